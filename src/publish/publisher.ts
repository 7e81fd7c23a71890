import type { Artifact } from '../oci/image.js';

/**
 * Where a built artifact goes: a registry repository or an OCI layout (docs/architecture.md#build-and-publish).
 * Publishing is split in two so that the orchestration can write every package's
 * content first and names last (docs/publishing.md): a failed run never leaves a tag on
 * incomplete content.
 */
export interface Publisher {
  /** `host/repo` or `oci:dir`, for logs and outputs. */
  readonly name: string;
  /**
   * Write every blob, then every platform manifest, then the index, all by digest. `named`: what
   * tags were seen to name earlier in the run; one that names the artifact means it is there.
   * `imagesUp` is called once every platform image's manifest is there, before the index goes
   * up: what refers to the images (SBOMs) need not wait for the index.
   */
  putContent(artifact: Artifact, named?: ReadonlyMap<string, string>, imagesUp?: () => void): Promise<void>;
  /**
   * Point each tag at the artifact. Called only after putContent succeeded for every package.
   * `named`: what tags were seen to name earlier in the run; one that names the artifact
   * already is left as it is.
   */
  putTags(artifact: Artifact, tags: readonly string[], named?: ReadonlyMap<string, string>): Promise<void>;
}
