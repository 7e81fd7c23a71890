// Generates the benchmark's Go program: a module with a main package that uses a broad slice of
// the standard library (HTTP server and client, TLS, JSON, templates, SQL, compression, images),
// a generated package of many functions with lookup tables, and a few MB of embedded assets, some
// text-like (compressible, like templates and JSON) and some noise (incompressible, like PNGs).
// Standard library only, so it builds without the network. The output is a deterministic
// function of the seed, so every run of the bench builds the same binaries (~25 MB each).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const MODULE = 'example.com/benchapp';
export const PACKAGE = './cmd/benchapp';

/** A small, seeded PRNG (mulberry32): the same program on every machine. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa ' +
  'quebec romeo sierra tango uniform victor whiskey xray yankee zulu order invoice customer account ' +
  'balance ledger shipment warehouse region country currency amount status pending settled refunded ' +
  'created updated deleted archived priority owner team project milestone release build deploy'
).split(' ');

/**
 * Write the module into `dir`. Sizes: `funcs` generated functions (code), `tableRows` rows of
 * string/number tables (rodata), `textKiB` of JSON-lines assets and `noiseKiB` of random bytes
 * (both embedded with go:embed).
 */
export async function generateProgram(dir, { seed = 7, funcs = 2500, tableRows = 60000, textKiB = 4096, noiseKiB = 2048 } = {}) {
  const rnd = prng(seed);
  const word = () => WORDS[Math.floor(rnd() * WORDS.length)];
  const int = (n) => Math.floor(rnd() * n);
  await mkdir(join(dir, 'cmd/benchapp'), { recursive: true });
  await mkdir(join(dir, 'internal/gen'), { recursive: true });
  await mkdir(join(dir, 'internal/assets/data'), { recursive: true });
  await writeFile(join(dir, 'go.mod'), `module ${MODULE}\n\ngo 1.23\n`);

  // Generated functions, split over files so the compiler can work in parallel.
  const perFile = 250;
  for (let f = 0; f * perFile < funcs; f++) {
    let src = 'package gen\n\nimport (\n\t"fmt"\n\t"strings"\n)\n\n';
    for (let i = f * perFile; i < Math.min(funcs, (f + 1) * perFile); i++) {
      const k = [int(1000), int(1000), int(1000), int(97) + 3];
      src += `// F${i} is generated.\nfunc F${i}(x int, s string) (int, string) {\n`;
      src += `\tswitch x % ${k[3]} {\n`;
      for (let c = 0; c < 6; c++) src += `\tcase ${c}:\n\t\tx = x*${k[0] + c} + ${k[1]}\n\t\ts = strings.ToUpper(s) + "${word()}-${word()}"\n`;
      src += `\tdefault:\n\t\tx ^= ${k[2]}\n\t\ts = fmt.Sprintf("%s/%d/${word()}", s, x)\n\t}\n`;
      src += `\tfor i := 0; i < x%7; i++ {\n\t\tx += len(s) * ${int(50) + 1}\n\t}\n\treturn x, s\n}\n\n`;
    }
    await writeFile(join(dir, `internal/gen/funcs${f}.go`), src);
  }
  let reg = 'package gen\n\n// Funcs lists every generated function, so none is dead code.\nvar Funcs = []func(int, string) (int, string){\n';
  for (let i = 0; i < funcs; i++) reg += `\tF${i},\n`;
  reg += '}\n';
  await writeFile(join(dir, 'internal/gen/registry.go'), reg);

  // Tables: string and number columns, as a generated lookup (a locale, a schema, a catalogue).
  const perTable = 10000;
  for (let t = 0; t * perTable < tableRows; t++) {
    let src = `package gen\n\n// Row is one generated record.\ntype Row${t} struct {\n\tID   int64\n\tName string\n\tCode string\n\tRate float64\n\tTags []string\n}\n\n`;
    src += `// Table${t} is generated data.\nvar Table${t} = []Row${t}{\n`;
    for (let r = t * perTable; r < Math.min(tableRows, (t + 1) * perTable); r++) {
      src += `\t{${r * 7919 + int(7919)}, "${word()} ${word()} ${word()} ${r}", "${int(1 << 30).toString(36)}", ${(rnd() * 1000).toFixed(4)}, []string{"${word()}", "${word()}"}},\n`;
    }
    src += '}\n';
    await writeFile(join(dir, `internal/gen/table${t}.go`), src);
  }
  let sizes = 'package gen\n\n// TableSizes is the number of rows of each table.\nvar TableSizes = []int{\n';
  for (let t = 0; t * perTable < tableRows; t++) sizes += `\tlen(Table${t}),\n`;
  sizes += '}\n';
  await writeFile(join(dir, 'internal/gen/tables.go'), sizes);

  // Assets: JSON lines (compresses like text does) and noise (like already-compressed images).
  const lines = [];
  let n = 0;
  for (let i = 0; n < textKiB * 1024; i++) {
    const line = JSON.stringify({ id: i, customer: `${word()} ${word()}`, status: word(), region: word(), amount: Number((rnd() * 10000).toFixed(2)), items: [word(), word(), word()], note: `${word()} ${word()} ${word()} ${word()} ${int(1e9)}` });
    lines.push(line);
    n += line.length + 1;
  }
  await writeFile(join(dir, 'internal/assets/data/records.jsonl'), lines.join('\n') + '\n');
  const noise = Buffer.alloc(noiseKiB * 1024);
  for (let i = 0; i < noise.length; i += 4) noise.writeUInt32LE(Math.floor(rnd() * 4294967296), i);
  await writeFile(join(dir, 'internal/assets/data/blob.bin'), noise);
  await writeFile(
    join(dir, 'internal/assets/assets.go'),
    'package assets\n\nimport "embed"\n\n// FS holds the generated assets.\n//\n//go:embed data\nvar FS embed.FS\n',
  );

  await writeFile(
    join(dir, 'cmd/benchapp/main.go'),
    `// Command benchapp is the ko-annotate benchmark's generated program.
package main

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html/template"
	"image"
	"image/png"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"text/tabwriter"

	"${MODULE}/internal/assets"
	"${MODULE}/internal/gen"
)

var page = template.Must(template.New("p").Parse("<h1>{{.}}</h1>"))

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	x, s := 0, "start"
	for _, f := range gen.Funcs {
		x, s = f(x, s[:min(len(s), 32)])
	}
	rows := 0
	for _, n := range gen.TableSizes {
		rows += n
	}
	entries, _ := fs.ReadDir(assets.FS, "data")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = page.Execute(w, r.URL.Path)
	}))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_ = json.NewEncoder(zw).Encode(map[string]any{"x": x, "rows": rows, "assets": len(entries)})
	_ = zw.Close()
	_ = xml.NewEncoder(&buf).Encode(struct{ X int }{x})
	_ = png.Encode(&buf, image.NewGray(image.Rect(0, 0, 4, 4)))
	_ = zip.NewWriter(&buf).Close()
	_, _ = sql.Open("none", "")
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 1, ' ', 0)
	fmt.Fprintf(tw, "funcs\\t%d\\nrows\\t%d\\nassets\\t%d\\nkey\\t%v\\nmatch\\t%v\\n", len(gen.Funcs), rows, len(entries), key.Curve.Params().Name, regexp.MustCompile(\`^[a-z]+$\`).MatchString(s))
	_ = tw.Flush()
	logger.Info("done", "bytes", buf.Len(), "srv", srv != nil)
}
`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: node bench/genprog.mjs DIR');
  await generateProgram(dir);
}
