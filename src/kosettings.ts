import { relative, resolve } from 'node:path';
import { loadKoConfig, refuseToolexec, refuseToolexecInEnv, resolveBuild } from './config/koyaml.js';
import type { KoSettings } from './engine.js';
import type { Inputs } from './inputs.js';

/**
 * `.ko.yaml` (and KO_DEFAULTBASEIMAGE / KO_DEFAULTPLATFORMS) as the engine sees it: defaults
 * that inputs override, and per-package build settings with their templates rendered.
 */
export async function loadKoSettings(
  inputs: Inputs,
  env: Record<string, string | undefined>,
  workspace: string,
  render: (text: string, where: string, buildEnv?: Readonly<Record<string, string>>) => string,
): Promise<KoSettings> {
  refuseToolexec(inputs.flags, 'input "flags"');
  refuseToolexecInEnv([...Object.entries(inputs.env).map(([k, v]) => `${k}=${v}`), ...inputs.platformEnv.map((l) => `${l.key}=${l.value}`)], 'input "env"');
  const workingDirectory = resolve(workspace, inputs.workingDirectory);
  const config = await loadKoConfig({ workingDirectory, env });
  const asTarget = (dir: string, pkgDir: string) => {
    const rel = relative(dir, pkgDir).split('\\').join('/');
    return rel === '' ? '.' : `./${rel}`;
  };
  return {
    defaultBaseImage: config?.defaultBaseImage,
    locate(spec) {
      // Only local paths can name a build entry; import paths are Go's to resolve.
      if (!config?.builds.length || !spec.startsWith('.')) return undefined;
      const pkgDir = resolve(workingDirectory, spec);
      const b = resolveBuild(config, '', relative(workingDirectory, pkgDir) || '.');
      if (b.id === undefined) return undefined;
      const dir = resolve(workingDirectory, b.dir);
      // go list must see the build's CGO_ENABLED=1 (docs/cgo.md): a main package of cgo files
      // has no files without it. Templates are not rendered yet; a literal value is what counts.
      const cgo = b.env.map((l) => /^CGO_ENABLED=([^{]*)$/.exec(l)?.[1]).filter((v) => v !== undefined).at(-1);
      return { dir, target: asTarget(dir, pkgDir), ...(cgo !== undefined ? { env: { CGO_ENABLED: cgo } } : {}) };
    },
    baseImageOverrides: config?.baseImageOverrides,
    defaultPlatforms: config?.defaultPlatforms,
    buildFor(pkg, over) {
      const b = resolveBuild(config, pkg.importPath, relative(workingDirectory, pkg.dir) || '.');
      refuseToolexecInEnv(b.env, b.where.env);
      const env: Record<string, string> = {};
      for (const line of b.env) {
        const eq = line.indexOf('=');
        if (eq <= 0) throw new Error(`${b.where.env}: ${JSON.stringify(line)} is not KEY=VALUE`);
        env[line.slice(0, eq)] = render(line.slice(eq + 1), b.where.env);
      }
      // Again once rendered, as ko does: a template can produce the flag.
      refuseToolexecInEnv(Object.entries(env).map(([k, v]) => `${k}=${v}`), b.where.env);
      // ko renders flags and ldflags with the whole build environment in {{.Env}}.
      const buildEnv = { ...env, ...over };
      const flags = b.flags.map((f) => render(f, b.where.flags, buildEnv));
      refuseToolexec(flags, b.where.flags);
      const dir = resolve(workingDirectory, b.dir);
      return {
        dir,
        // go build runs in `dir`; the package is named relative to it, as ko does.
        target: asTarget(dir, pkg.dir),
        flags,
        ldflags: b.ldflags.map((f) => render(f, b.where.ldflags, buildEnv)),
        env,
      };
    },
  };
}
