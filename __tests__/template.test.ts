import { describe, expect, it } from '@jest/globals';
import { EMPTY_GIT_INFO, type GitInfo } from '../src/config/git.js';
import { renderTemplate, renderTemplates, type TemplateData } from '../src/config/template.js';

const git: GitInfo = {
  branch: 'main',
  tag: 'v1.2.3',
  shortCommit: 'abc1234',
  fullCommit: 'abc1234def5678abc1234def5678abc1234def56',
  commitDate: '2026-01-02T03:04:05Z',
  commitTimestamp: '1767323045',
  isDirty: false,
  treeState: 'clean',
};
const data: TemplateData = {
  env: { VERSION: '1.2.3', EMPTY: '' },
  created: new Date('2026-03-04T05:06:07.890Z'),
  git,
};
const where = 'input "ldflags"';

describe('renderTemplate', () => {
  it.each([
    ['-X main.version={{.Env.VERSION}}', '-X main.version=1.2.3'],
    ['{{.Env.EMPTY}}x', 'x'],
    ['{{.Env.LDFLAGS}}', ''],
    // Go's RFC3339 has no fraction; the created time is passed in, so this is stable.
    ['{{.Date}}', '2026-03-04T05:06:07Z'],
    ['{{.Timestamp}}', '1772600767'],
    ['{{.Git.Branch}}', 'main'],
    ['{{.Git.Tag}}', 'v1.2.3'],
    ['{{.Git.ShortCommit}}', 'abc1234'],
    ['{{.Git.FullCommit}}', git.fullCommit],
    ['{{.Git.CommitDate}}', '2026-01-02T03:04:05Z'],
    ['{{.Git.CommitTimestamp}}', '1767323045'],
    ['{{.Git.IsDirty}}', 'false'],
    ['{{.Git.IsClean}}', 'true'],
    ['{{.Git.TreeState}}', 'clean'],
    ['{{ .Git.Tag }}', 'v1.2.3'],
    ['{{\t.Git.Tag\n}}', 'v1.2.3'],
    ['a {{- .Git.Tag -}} b', 'av1.2.3b'],
    ['a {{-  .Git.Tag}} b', 'av1.2.3 b'],
    ['-X a={{.Git.ShortCommit}} -X b={{.Git.TreeState}}', '-X a=abc1234 -X b=clean'],
    ['no actions }} here', 'no actions }} here'],
    ['', ''],
  ])('%j → %j', (text, want) => {
    expect(renderTemplate(text, data, where)).toBe(want);
  });

  it('renders a dirty tree', () => {
    const dirty = { ...data, git: { ...git, isDirty: true, treeState: 'dirty' as const } };
    expect(renderTemplate('{{.Git.IsDirty}} {{.Git.IsClean}} {{.Git.TreeState}}', dirty, where)).toBe('true false dirty');
  });

  it('renders empty git facts outside a repository, where the tree is neither clean nor dirty', () => {
    const none = { ...data, git: { ...EMPTY_GIT_INFO } };
    expect(renderTemplate('[{{.Git.FullCommit}}][{{.Git.IsDirty}}][{{.Git.IsClean}}][{{.Git.TreeState}}]', none, where)).toBe(
      '[][false][false][]',
    );
  });

  it('fails on an unset environment variable, as ko does (missingkey=error)', () => {
    expect(() => renderTemplate('-X v={{.Env.NOPE}}', data, where)).toThrow(
      'input "ldflags": template "-X v={{.Env.NOPE}}": {{.Env.NOPE}}: environment variable "NOPE" is not set',
    );
  });

  it.each([
    ['{{.Git.Sha}}', 'unknown field ".Git.Sha"'],
    ['{{.git.tag}}', 'unknown field ".git.tag"'],
    ['{{.Version}}', 'unknown field ".Version"'],
    ['{{.Env}}', 'unknown field ".Env"'],
    ['{{.GoEnv.GOOS}}', 'unknown field ".GoEnv.GOOS"'],
    ['{{if .Git.IsDirty}}x{{end}}', 'only fields such as'],
    ['{{.Git.Tag | printf "%s"}}', 'only fields such as'],
    ['{{/* comment */}}', 'only fields such as'],
    ['{{index .Env "A-B"}}', 'only fields such as'],
    ['{{}}', 'only fields such as'],
    ['x {{.Git.Tag', '"{{" at offset 2 has no closing "}}"'],
  ])('refuses %j', (text, why) => {
    let message = '';
    try {
      renderTemplate(text, data, '.ko.yaml builds[1].ldflags');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain(`.ko.yaml builds[1].ldflags: template ${JSON.stringify(text)}: `);
    expect(message).toContain(why);
  });

  it('renders lists entry by entry', () => {
    expect(renderTemplates(['-s', '-X a={{.Git.Tag}}'], data, where)).toEqual(['-s', '-X a=v1.2.3']);
  });
});
