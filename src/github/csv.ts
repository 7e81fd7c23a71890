/**
 * The CSV that docker/metadata-action reads its `tags` and `flavor` inputs with (docs/tag-rules.md#quoting):
 * fields split at commas, a field that starts with `"` runs to the next lone `"` (`""` inside
 * is one quote), and a record ends at a line break outside quotes. It reads each input twice:
 * once as the whole input, one record per line (`#` lines are comments), which drops the
 * quotes and joins the fields again with commas; then each resulting line as one rule.
 */
export interface CsvRecord {
  fields: string[];
  /** 1-based line of the input where the record starts. */
  line: number;
}

export interface CsvOptions {
  /** A `"` inside an unquoted field is kept as a character; otherwise it is an error. */
  relaxQuotes: boolean;
  /** Lines that start with `#` are skipped. */
  comments: boolean;
}

/** Parse `text` into records; throws a message without the input's name (the caller adds it). */
export function csvRecords(text: string, { relaxQuotes, comments }: CsvOptions): CsvRecord[] {
  const records: CsvRecord[] = [];
  let i = 0;
  let line = 1;
  while (i < text.length) {
    const start = line;
    const lineEnd = text.indexOf('\n', i);
    const rest = text.slice(i, lineEnd < 0 ? text.length : lineEnd).replace(/\r$/, '');
    if (rest === '' || (comments && rest.startsWith('#'))) {
      i = lineEnd < 0 ? text.length : lineEnd + 1;
      line++;
      continue;
    }
    const fields: string[] = [];
    for (;;) {
      let field = '';
      if (text[i] === '"') {
        i++;
        for (;;) {
          if (i >= text.length) throw new Error(`a quote opened on line ${start} is never closed`);
          const c = text[i];
          if (c === '"' && text[i + 1] === '"') {
            field += '"';
            i += 2;
          } else if (c === '"') {
            i++;
            break;
          } else {
            if (c === '\n') line++;
            field += c;
            i++;
          }
        }
        const next = text[i];
        if (next !== undefined && next !== ',' && next !== '\n' && !(next === '\r' && text[i + 1] === '\n')) {
          throw new Error(`a closing quote on line ${line} is followed by ${JSON.stringify(next)} instead of a comma or the end of the line`);
        }
      } else {
        while (i < text.length && text[i] !== ',' && text[i] !== '\n' && !(text[i] === '\r' && text[i + 1] === '\n')) {
          if (text[i] === '"' && !relaxQuotes) {
            throw new Error(`a quote inside a field (${JSON.stringify(field + '"')}) must open the field, and then close it`);
          }
          field += text[i];
          i++;
        }
      }
      fields.push(field);
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === '\r') i++;
      if (text[i] === '\n') {
        i++;
        line++;
      }
      break;
    }
    records.push({ fields, line: start });
  }
  return records;
}

/** One item of a list input, with the line it starts on. */
export interface ListItem {
  text: string;
  line: number;
}

/**
 * A list input as metadata-action reads `tags` and `flavor` (its getInputList with ignoreComma):
 * one item per record, its fields joined again with commas, trimmed, empty ones dropped.
 */
export function listItems(text: string): ListItem[] {
  return csvRecords(text, { relaxQuotes: true, comments: true })
    .map((r) => ({ text: r.fields.join(',').trim(), line: r.line }))
    .filter((item) => item.text !== '');
}

/** listItems of the input `name`; a malformed list is an error naming the input. */
export function inputItems(name: string, text: string): ListItem[] {
  try {
    return listItems(text);
  } catch (err) {
    throw new Error(`input "${name}": ${(err as Error).message}`, { cause: err });
  }
}
