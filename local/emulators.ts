/**
 * The AWS emulators of the local stack and the tests, on loopback: fauxqs 1.x (SQS + S3) and
 * dynalite (DynamoDB), started in this process. Nothing but Node is needed.
 */
import { createServer } from 'node:net';
import dynalite from 'dynalite';
import { startFauxqs } from 'fauxqs';

export interface Emulators {
  sqsEndpoint: string;
  s3Endpoint: string;
  dynamodbEndpoint: string;
  /**
   * Stops fauxqs (SQS + S3) as a crash would: open connections are cut, and because fauxqs 1.x
   * keeps everything in memory, every queue, message, bucket and object is gone.
   */
  stopQueueEmulator(): Promise<void>;
  /** Starts a fresh, empty fauxqs on the same port (the endpoints stay valid). */
  startQueueEmulator(): Promise<void>;
  stop(): Promise<void>;
}

export interface EmulatorOptions {
  /** Fixed ports (npm start); 0 or absent picks free ones (tests). */
  fauxqsPort?: number;
  dynalitePort?: number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startEmulators(options: EmulatorOptions = {}): Promise<Emulators> {
  const fauxqsPort = options.fauxqsPort || (await freePort());
  const launch = () => startFauxqs({ port: fauxqsPort, host: '127.0.0.1', logger: false });
  let fauxqs: Awaited<ReturnType<typeof startFauxqs>> | null = await launch();
  const dyn = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  try {
    await new Promise<void>((resolve, reject) => {
      dyn.once('error', reject);
      dyn.listen(options.dynalitePort ?? 0, '127.0.0.1', () => resolve());
    });
  } catch (err) {
    await fauxqs.stop();
    throw err;
  }
  const stopFauxqs = async () => {
    const running = fauxqs;
    fauxqs = null;
    await running?.stop();
  };
  const address = dyn.address();
  const dynPort = typeof address === 'object' && address ? address.port : 0;
  return {
    sqsEndpoint: `http://127.0.0.1:${fauxqsPort}`,
    s3Endpoint: `http://127.0.0.1:${fauxqsPort}`,
    dynamodbEndpoint: `http://127.0.0.1:${dynPort}`,
    stopQueueEmulator: stopFauxqs,
    async startQueueEmulator() {
      if (fauxqs) throw new Error('fauxqs is already running; stop it first');
      fauxqs = await launch();
    },
    async stop() {
      await Promise.all([stopFauxqs(), new Promise<void>((resolve) => dyn.close(() => resolve()))]);
    },
  };
}
