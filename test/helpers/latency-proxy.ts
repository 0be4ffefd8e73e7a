/**
 * A TCP proxy that delays every chunk the client sends by `delayMs` (in order): a slow network to Temporal, so a
 * test can act in the middle of a run of RPCs however fast this machine answers them.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export interface LatencyProxy {
  /** host:port to connect to instead of the target. */
  address: string;
  close(): Promise<void>;
}

export async function startLatencyProxy(target: string, delayMs: number): Promise<LatencyProxy> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    // Each chunk leaves delayMs after it came, never before the one before it.
    let last = 0;
    client.on('data', (chunk: Buffer) => {
      const due = Math.max(Date.now() + delayMs, last);
      last = due;
      setTimeout(() => upstream.write(chunk), due - Date.now());
    });
    client.on('end', () => setTimeout(() => upstream.end(), Math.max(0, last - Date.now())));
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
