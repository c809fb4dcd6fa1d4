/** A one-line progress bar for terminals; silent elsewhere (logs and pipes get no escape codes). */
export class ProgressBar {
  private readonly start = performance.now();
  private active = false;

  constructor(
    private readonly stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
    private readonly label: string,
  ) {}

  update(done: number, total: number): void {
    if (!this.stream.isTTY) return;
    this.active = true;
    const width = Math.max(10, Math.min(40, (this.stream.columns ?? 80) - 40));
    const filled = total > 0 ? Math.round((done / total) * width) : width;
    const seconds = (performance.now() - this.start) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    this.stream.write(`\r${this.label} ${bar} ${done}/${total} ${rate.toFixed(2)} it/s`);
  }

  finish(): void {
    if (this.active) this.stream.write('\n');
    this.active = false;
  }
}
