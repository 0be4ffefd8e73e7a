/**
 * Date formatters for a time zone, made once per zone and options: making an Intl.DateTimeFormat costs a tenth of a
 * millisecond or more (it loads the zone's data), and the planners ask for the same few zones thousands of times (a
 * subscription import plans a dozen offsets per subscription). Bounded by the time-zone database: callers validate
 * a zone before they format with it.
 */
const formats = new Map<string, Intl.DateTimeFormat>();

export function zoneFormat(timeZone: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = `${timeZone}\u0000${JSON.stringify(options)}`;
  let format = formats.get(key);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { ...options, timeZone });
    formats.set(key, format);
  }
  return format;
}
