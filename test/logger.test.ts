/** Log lines: JSON by default (for shippers), readable lines with LOG_FORMAT=pretty (and `npm start` on a terminal). */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../lib/config.js';
import { createLogger } from '../lib/logger.js';

function capture() {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { destination, text: () => chunks.join('') };
}

describe('log format', () => {
  it('JSON lines by default, readable lines when pretty', () => {
    const json = capture();
    createLogger('info', { process: 'api' }, { destination: json.destination }).info({ requestId: 'r-1' }, 'hello');
    expect(JSON.parse(json.text())).toMatchObject({ level: 30, msg: 'hello', requestId: 'r-1', process: 'api' });

    const pretty = capture();
    createLogger('info', { process: 'api' }, { format: 'pretty', destination: pretty.destination }).info(
      { requestId: 'r-1' },
      'hello',
    );
    const line = pretty.text();
    expect(line).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: hello\n/);
    expect(line).toMatch(/process: "api"/);
    expect(line).toMatch(/requestId: "r-1"/);
    expect(() => JSON.parse(line) as unknown).toThrow();
  });

  it('LOG_FORMAT is json or pretty, unset by default', () => {
    expect(loadConfig({}).logFormat).toBeUndefined();
    expect(loadConfig({ LOG_FORMAT: 'pretty' }).logFormat).toBe('pretty');
    expect(() => loadConfig({ LOG_FORMAT: 'xml' })).toThrow(/LOG_FORMAT/);
  });
});
