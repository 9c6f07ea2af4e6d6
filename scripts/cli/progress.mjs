// Progress output for long commands: a cli-progress bar on a TTY, otherwise (CI logs, pipes) one
// plain line at most every `everySeconds`, so a log shows the campaign moving without a line per case.
import cliProgress from 'cli-progress';

/**
 * `progress({ total, label })` → `{ update(value, text), log(line), stop() }`. `value` counts towards
 * `total` (the bar's fill), `text` is the status after it (e.g. "1234 cases, 210/s, 0 findings").
 */
export function progress({ total, label = '', everySeconds = 10, stream = process.stderr }) {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {percentage}% | {text}`, hideCursor: true, clearOnComplete: false, stream },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { text: '' });
    return {
      update: (value, text) => bar.update(Math.min(value, total), { text }),
      // A line above the bar: cli-progress redraws on the next update.
      log: (line) => {
        stream.write('\r\x1b[2K');
        console.log(line);
      },
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  return {
    update(value, text) {
      const now = Date.now();
      if (now - last < everySeconds * 1000) return;
      last = now;
      stream.write(`${label} ${Math.floor((100 * Math.min(value, total)) / total)}% ${text}\n`);
    },
    log: (line) => console.log(line),
    stop() {},
  };
}
