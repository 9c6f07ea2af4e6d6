// Progress for long work (bench, fuzz, image, the QEMU tier): the stage, the elapsed time and, where
// the count is known, a bar — drawn by cli-progress on a terminal; plain lines, one per stage or every
// few seconds, when stderr is not a terminal (CI logs). Everything goes to stderr, so the results on
// stdout (tables, --json lines) stay clean.
import cliProgress from 'cli-progress';

const tty = () => process.stderr.isTTY && !process.env.CI && process.env.TERM !== 'dumb';
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
const clock = (ms) => {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};

/**
 * Named stages of one job: `await p.stage(name, fn)` runs fn and reports it; `p.done()` ends the job
 * with its total time. With `total` (the number of stages) a terminal shows a bar over them.
 */
export function stages({ title, total = 0 }) {
  const t0 = performance.now();
  let k = 0;
  const bar = tty() && total > 1 ? new cliProgress.SingleBar({ format: `${title} {bar} {value}/{total} | {stage} | {elapsed}`, hideCursor: true, clearOnComplete: true, stream: process.stderr }, cliProgress.Presets.shades_classic) : null;
  bar?.start(total, 0, { stage: '', elapsed: '0:00' });
  const ticker = bar ? setInterval(() => bar.update({ elapsed: clock(performance.now() - t0) }), 1000) : null;
  ticker?.unref();
  return {
    async stage(name, fn) {
      const s = performance.now();
      k++;
      if (bar) bar.update(k - 1, { stage: name });
      else process.stderr.write(`[${title}] ${name}${total > 1 ? ` (${k}/${total})` : ''} …\n`);
      try {
        const r = await fn();
        if (bar) bar.update(k, { stage: `${name} done in ${secs(performance.now() - s)}` });
        else process.stderr.write(`[${title}] ${name} done in ${secs(performance.now() - s)}\n`);
        return r;
      } catch (e) {
        bar?.stop();
        process.stderr.write(`[${title}] ${name} FAILED after ${secs(performance.now() - s)}\n`);
        throw e;
      }
    },
    done() {
      if (ticker) clearInterval(ticker);
      bar?.stop();
      process.stderr.write(`[${title}] ${k} stage${k === 1 ? '' : 's'} in ${secs(performance.now() - t0)}\n`);
    },
  };
}

/**
 * A counted piece of work (fuzz cases, or the seconds of a timed campaign): `tick(done, detail)` as it
 * goes, `stop()` at the end. A terminal shows a bar with the rate (unless `rate: false`) and elapsed time;
 * otherwise a line at most every 10 s.
 */
export function counter({ title, total, unit = 'cases', rate: showRate = true }) {
  const t0 = performance.now();
  let last = t0;
  let cur = 0;
  const bar = tty() ? new cliProgress.SingleBar({ format: `${title} {bar} {value}/{total} ${unit} |${showRate ? ' {rate}/s |' : ''} {elapsed} {detail}`, hideCursor: true, clearOnComplete: true, stream: process.stderr }, cliProgress.Presets.shades_classic) : null;
  bar?.start(total, 0, { rate: 0, elapsed: '0:00', detail: '' });
  return {
    tick(done, detail = '') {
      const now = performance.now();
      cur = done;
      const rate = Math.round(done / Math.max(1e-3, (now - t0) / 1000));
      if (bar) bar.update(done, { rate, elapsed: clock(now - t0), detail });
      else if (now - last >= 10_000) {
        last = now;
        process.stderr.write(`[${title}] ${done}/${total} ${unit}${showRate ? `, ${rate}/s` : ''}, ${clock(now - t0)}${detail ? ` ${detail}` : ''}\n`);
      }
    },
    /** Prints a line above the bar (a finding). */
    log(line) {
      if (bar) {
        bar.stop();
        process.stderr.write(`${line}\n`);
        bar.start(total, cur);
      } else process.stderr.write(`${line}\n`);
    },
    stop() {
      bar?.stop();
    },
  };
}
