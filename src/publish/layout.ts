import type { Artifact } from '../oci/image.js';
import { LayoutWriter } from '../oci/layout.js';
import type { Publisher } from './publisher.js';

/**
 * Publishes into an OCI image layout. Each artifact gets one index.json entry named by the
 * first of the names it is given (`org.opencontainers.image.ref.name`), so `skopeo inspect
 * oci:DIR` reads a single-package layout and `oci:DIR:NAME` picks one of several.
 */
export class LayoutPublisher implements Publisher {
  private readonly writer: LayoutWriter;
  readonly name: string;
  constructor(readonly dir: string) {
    this.writer = new LayoutWriter(dir);
    this.name = `oci:${dir}`;
  }
  putContent(a: Artifact): Promise<void> {
    return this.writer.putContent(a);
  }
  putTags(a: Artifact, tags: readonly string[]): Promise<void> {
    return this.writer.putName(a, tags[0]);
  }
}
