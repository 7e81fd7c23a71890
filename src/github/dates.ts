/**
 * `{{date 'format' tz='Zone'}}` and `{{commit_date …}}` (docs/tag-rules.md#expressions): a
 * moment.js format, as docker/metadata-action renders it with moment-timezone. moment formats;
 * the zone's offset at that instant comes from Intl (Node's ICU zone data), so moment-timezone's
 * own copy of the zone data is not needed. Only the zone-abbreviation tokens (`z`, `zz`) would
 * need it, and they are refused when the rule is read (checkFormat).
 */
export type DateFormatter = (date: Date, format: string | undefined, zone: string) => string;

/** Loaded only for rules that use a date: most runs never evaluate moment's code. */
export async function dateFormatter(): Promise<DateFormatter> {
  const { default: moment } = await import(/* webpackMode: "eager" */ 'moment');
  return (date, format, zone) => {
    const offset = offsetMinutes(date, zone);
    // utcOffset(0) puts moment in UTC mode, as moment-timezone's tz('UTC') does, so that a
    // missing format gives the same default (…ss[Z] for UTC, …ssZ otherwise).
    return moment.utc(date.getTime()).utcOffset(offset).format(format);
  };
}

/** Whether `zone` is an IANA time zone this runtime knows. */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Throws when `format` uses a token formatDate cannot render as moment-timezone does. */
export function checkFormat(format: string): void {
  // moment reads `[…]` as literal text; everything else may be a token.
  const tokens = format.replace(/\[[^[]*\]/g, '');
  if (/z/.test(tokens)) {
    throw new Error(`the zone-name token z/zz in ${JSON.stringify(format)} is not supported; use Z (+09:00) or ZZ (+0900), or put literal text in [brackets]`);
  }
}

const partsFormat = new Map<string, Intl.DateTimeFormat>();

/** The zone's offset from UTC at `date`, in minutes. */
function offsetMinutes(date: Date, zone: string): number {
  let f = partsFormat.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      era: 'short',
    });
    partsFormat.set(zone, f);
  }
  const p = Object.fromEntries(f.formatToParts(date).map((x) => [x.type, x.value]));
  const year = p.era === 'BC' || p.era === 'B' ? 1 - Number(p.year) : Number(p.year);
  const wall = Date.UTC(year, Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second));
  const whole = Math.floor(date.getTime() / 1000) * 1000;
  return Math.round((wall - whole) / 60000);
}
