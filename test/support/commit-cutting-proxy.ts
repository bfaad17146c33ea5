import { connect, type Server, type Socket } from 'node:net';
import { listenOnLoopback, routeThrough } from './faults';

/** What the proxy does to the next COMMIT it sees, once armed. */
export type CommitCut =
  /** Let COMMIT reach PostgreSQL, wait until it has answered (committed), then cut the client off before the answer. */
  | 'after-commit'
  /** Cut the connection instead of sending COMMIT on: PostgreSQL rolls the transaction back. */
  | 'instead-of-commit';

/**
 * A TCP proxy in front of PostgreSQL that reads the frontend protocol (startup packet, then
 * typed messages) from the client and, once armed, cuts the connection of the next COMMIT (a
 * simple Query message, which is how TypeORM commits) in one of two ways. While "down", it
 * closes every new connection at once, like a database that cannot be reached.
 */
export class CommitCuttingProxy {
  private armed: { cut: CommitCut; downForMs: number; done: () => void } | undefined;
  private downUntil = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<CommitCuttingProxy> {
    const holder: { proxy?: CommitCuttingProxy } = {};
    const { server, port } = await listenOnLoopback((client) => holder.proxy?.accept(client, targetHost, targetPort));
    holder.proxy = new CommitCuttingProxy(server, port);
    return holder.proxy;
  }

  /** `url` with its host and port replaced by the proxy's. */
  route(url: string): string {
    return routeThrough(this.port, url);
  }

  /**
   * Cuts the next COMMIT. With `downForMs`, the database then looks unreachable for that long:
   * every open connection is closed and new ones are closed at once. Resolves at the cut.
   */
  arm(cut: CommitCut, downForMs = 0): Promise<void> {
    return new Promise((resolve) => {
      this.armed = { cut, downForMs, done: resolve };
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, targetHost: string, targetPort: number): void {
    this.track(client);
    if (Date.now() < this.downUntil) {
      client.destroy();
      return;
    }
    const server = connect(targetPort, targetHost);
    this.track(server);
    let pending = Buffer.alloc(0);
    let started = false;
    let cutOnAnswer: (() => void) | undefined;
    const cut = () => {
      client.destroy();
      server.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      let commit = false;
      for (;;) {
        if (!started) {
          if (pending.length < 8) break;
          const length = pending.readInt32BE(0);
          if (pending.length < length) break;
          // An SSLRequest (code 80877103) comes before the startup packet; anything else is the startup packet.
          started = pending.readInt32BE(4) !== 80_877_103;
          pending = pending.subarray(length);
          continue;
        }
        if (pending.length < 5) break;
        const length = pending.readInt32BE(1);
        if (pending.length < 1 + length) break;
        const type = String.fromCharCode(pending[0]!);
        if (type === 'Q' && /^\s*COMMIT\s*;?\s*$/i.test(pending.subarray(5, 1 + length).toString('utf8').replace(/\0$/, ''))) commit = true;
        pending = pending.subarray(1 + length);
      }
      if (commit && this.armed !== undefined) {
        const armed = this.armed;
        this.armed = undefined;
        if (armed.downForMs > 0) this.downUntil = Date.now() + armed.downForMs;
        const goDown = () => {
          if (armed.downForMs > 0) for (const socket of this.sockets) socket.destroy();
          armed.done();
        };
        if (armed.cut === 'instead-of-commit') {
          cut();
          goDown();
          return;
        }
        cutOnAnswer = () => {
          cut();
          goDown();
        };
      }
      if (!server.destroyed) server.write(chunk);
    });
    server.on('data', (chunk: Buffer) => {
      if (cutOnAnswer) cutOnAnswer(); // PostgreSQL answered the COMMIT: it is done, and the client never hears it
      else if (!client.destroyed) client.write(chunk);
    });
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined); // reported through 'close' to the peer
  }
}
