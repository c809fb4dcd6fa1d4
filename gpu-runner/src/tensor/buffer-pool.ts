/**
 * Large working buffers kept between generations. One image at SD3 Medium size allocates tens of
 * megabytes of typed arrays; reusing them keeps V8's external-memory GCs out of the step loop.
 * A pool belongs to one pipeline, which runs one generation at a time; buffers handed to callers
 * (results) are never taken from it.
 */
export class BufferPool {
  private readonly f32 = new Map<string, Float32Array>();
  private readonly u16 = new Map<string, Uint16Array>();

  float32(key: string, length: number): Float32Array {
    let buf = this.f32.get(key);
    if (!buf || buf.length !== length) {
      buf = new Float32Array(length);
      this.f32.set(key, buf);
    }
    return buf;
  }

  uint16(key: string, length: number): Uint16Array {
    let buf = this.u16.get(key);
    if (!buf || buf.length !== length) {
      buf = new Uint16Array(length);
      this.u16.set(key, buf);
    }
    return buf;
  }
}
