/** A one-line progress bar on a TTY; silent elsewhere (logs and pipes stay clean). */
import type { WriteStream } from "node:tty";

export interface Progress {
  update: (done: number, total: number) => void;
  done: () => void;
}

export function progressBar(stream: NodeJS.WriteStream | WriteStream, label: string): Progress {
  if (!stream.isTTY) return { update: () => undefined, done: () => undefined };
  let lastDrawMs = 0;
  let drawn = false;
  return {
    update(done, total) {
      const nowMs = performance.now();
      if (nowMs - lastDrawMs < 50 && done < total) return;
      lastDrawMs = nowMs;
      const width = 30;
      const fraction = total > 0 ? Math.min(1, done / total) : 1;
      const filled = Math.round(fraction * width);
      stream.write(`\r${label} [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${done}/${total}`);
      drawn = true;
    },
    done() {
      if (drawn) stream.write("\n");
    },
  };
}
