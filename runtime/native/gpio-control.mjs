/**
 * The client of a running backend's gpio control socket (runtime/native/gpio.c, docs/gpio.md): what
 * `npx bulkhead gpio …` and the tests use to drive lines from the host and see what the guest drives.
 * One command per line; the backend answers with data lines and "ok", or one "error: …" line.
 */
import { connect } from 'node:net';

/** Parses one "<n>\t<name>\t<direction>\t<level>\t<output>\t<input>" line. */
export function parseLineState(text) {
  const f = text.split('\t');
  if (f.length !== 6) throw new Error(`gpio control: malformed line state ${JSON.stringify(text)}`);
  return { line: Number(f[0]), name: f[1], direction: f[2], value: Number(f[3]), output: Number(f[4]), input: Number(f[5]) };
}

export class GpioControl {
  #sock;
  #buf = '';
  #waiters = [];
  #closed = null;

  constructor(sock) {
    this.#sock = sock;
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      this.#buf += d;
      this.#drain();
    });
    const end = (why) => {
      this.#closed ??= why;
      for (const w of this.#waiters.splice(0)) w.reject(new Error(`gpio control: ${this.#closed}`));
    };
    sock.on('error', (e) => end(e.message));
    sock.on('close', () => end('the backend closed the control socket'));
  }

  /** Connects to the control socket at `path`. */
  static connect(path, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      const t = setTimeout(() => {
        sock.destroy();
        reject(new Error(`gpio control: no answer from ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      sock.once('error', (e) => {
        clearTimeout(t);
        reject(new Error(`gpio control: cannot connect to ${path}: ${e.message} (is the backend running with this gpio control socket?)`));
      });
      sock.once('connect', () => {
        clearTimeout(t);
        resolve(new GpioControl(sock));
      });
    });
  }

  #drain() {
    for (;;) {
      const w = this.#waiters[0];
      if (!w) return;
      let i;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 1);
        if (line === 'ok') {
          this.#waiters.shift();
          w.resolve(w.lines);
          break;
        }
        if (line.startsWith('error: ')) {
          this.#waiters.shift();
          w.reject(new Error(`gpio: ${line.slice(7)}`));
          break;
        }
        w.lines.push(line);
      }
      if (i < 0) return;
    }
  }

  /** Sends one command; resolves with its data lines (rejects with the backend's error). */
  command(cmd, timeoutMs = 5000) {
    if (this.#closed) return Promise.reject(new Error(`gpio control: ${this.#closed}`));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`gpio control: no answer to '${cmd}' within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push({ lines: [], resolve: (v) => (clearTimeout(t), resolve(v)), reject: (e) => (clearTimeout(t), reject(e)) });
      this.#sock.write(`${cmd}\n`);
    });
  }

  async list() {
    return (await this.command('list')).map(parseLineState);
  }

  async get(line) {
    return parseLineState((await this.command(`get ${line}`))[0]);
  }

  async set(line, value) {
    await this.command(`set ${line} ${value}`);
  }

  close() {
    this.#sock.destroy();
  }
}
