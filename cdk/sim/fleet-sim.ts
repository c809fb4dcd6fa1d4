/**
 * Discrete-event simulation of one model's GPU fleet with the deployed scaling settings (from the
 * same DeployConfig the CDK app synthesizes):
 *
 * - jobs arrive on the queue; an idle runner task takes the oldest at once (long polling) and holds
 *   it for n images × secondsPerImage (±10 %);
 * - every metric period App Auto Scaling sees backlog per task = (visible + in-flight) / max(running, 1)
 *   and applies target tracking as AWS does: scale out after 3 datapoints above the target, scale in
 *   after 15 below 90 % of it, desired = ceil(desired × metric / target), with the cooldowns;
 * - the wake alarm (jobs visible while desired is 0, for its evaluation periods) adds one task;
 * - a task needs an instance: the capacity provider launches one about a minute after tasks wait,
 *   the instance boots (instanceBootSeconds), the task loads the model (modelLoadSeconds);
 *   instances left empty for 15 minutes are terminated (managed scaling's scale-in);
 * - spot instances are interrupted at random (spotInterruptionsPerHour) with a 2-minute notice; a task
 *   told to stop (scale-in or interruption) finishes its job if it fits the grace period, else
 *   releases it to the queue at once;
 * - CloudWatch datapoints are one period old when alarms evaluate them.
 */
import { type DeployConfig, graceSeconds, type ModelConfig } from '../lib/config.js';
import { exponential, rng, type Trace } from './traces.js';

/** AWS behaviours the simulation assumes (not configurable in the deployment). */
export const AWS_BEHAVIOUR = {
  metricPeriodSeconds: 60,
  targetTrackingHighDatapoints: 3,
  targetTrackingLowDatapoints: 15,
  scaleInThreshold: 0.9,
  capacityProviderDelaySeconds: 60,
  emptyInstanceTerminateSeconds: 15 * 60,
  spotNoticeSeconds: 120,
} as const;

interface Job {
  id: number;
  arrival: number;
  n: number;
  attempts: number;
}

interface Instance {
  id: number;
  spot: boolean;
  launchedAt: number;
  ready: boolean;
  doomed: boolean;
  task: Task | undefined;
  emptySince: number;
  spotNotice?: number;
}

interface Task {
  id: number;
  state: 'pending' | 'loading' | 'idle' | 'busy' | 'stopping';
  instance: Instance | undefined;
  job: Job | undefined;
  jobStart: number;
  jobEnd: number;
  /** Increments whenever the task's current work is abandoned, so stale events are ignored. */
  epoch: number;
}

type Event =
  | { kind: 'arrival'; job: Job }
  | { kind: 'tick' }
  | { kind: 'launch' }
  | { kind: 'instanceReady'; instance: Instance }
  | { kind: 'taskReady'; task: Task; epoch: number }
  | { kind: 'jobDone'; task: Task; epoch: number }
  | { kind: 'spotNotice'; instance: Instance }
  | { kind: 'instanceGone'; instance: Instance };

type Timed = Event & { t: number; seq: number };

class EventQueue {
  private heap: Timed[] = [];
  private seq = 0;
  get size() {
    return this.heap.length;
  }
  push(t: number, e: Event) {
    const item = { ...e, t, seq: this.seq++ } as Timed;
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(h[p]!, h[i]!)) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }
  pop(): Timed | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
  private less(a: Timed, b: Timed) {
    return a.t < b.t || (a.t === b.t && a.seq < b.seq);
  }
}

export interface SimResult {
  preset: string;
  trace: string;
  model: string;
  jobs: number;
  images: number;
  /** Completions per job id (conservation: each exactly 1). */
  completions: Map<number, number>;
  /** Seconds from arrival to the start of the attempt that completed, per job. */
  waits: number[];
  p50WaitSeconds: number;
  p95WaitSeconds: number;
  /** Busy GPU seconds over paid instance seconds. */
  gpuUtilisation: number;
  instanceHours: number;
  costUsd: number;
  costPer1000Images: number;
  maxTasks: number;
  /** Seconds from a job arriving at an idle (desired 0) fleet to desired ≥ 1, per such event. */
  wakeDelays: number[];
  /** Seconds from a job arriving at an empty fleet to that job starting, per such event. */
  coldStartWaits: number[];
  spotInterruptions: number;
  released: number;
  endSeconds: number;
}

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export function simulateFleet(config: DeployConfig, trace: Trace, seed: number, modelId?: string): SimResult {
  const model: ModelConfig = config.models.find((m) => m.id === modelId) ?? config.models[0]!;
  const B = AWS_BEHAVIOUR;
  const rand = rng(seed ^ 0x5d3);
  const q = new EventQueue();
  const price = config.prices[model.instanceTypes[0]!]!;
  const grace = graceSeconds(model);
  const tickEvery = config.scaling.wakePeriodSeconds;

  const queue: Job[] = [];
  const tasks = new Set<Task>();
  const instances = new Set<Instance>();
  let desired = model.minTasks;
  let nextId = 1;
  let launchScheduled = false;
  let instanceSeconds = 0;
  let costUsd = 0;
  let busySeconds = 0;
  let maxTasks = 0;
  let spotInterruptions = 0;
  let released = 0;
  const completions = new Map<number, number>();
  const waits: number[] = [];
  const wakeDelays: number[] = [];
  const coldStartWaits: number[] = [];
  let idleSince: number | undefined;
  let coldJob: Job | undefined;
  const samples: { backlog: number; wake: boolean }[] = [];
  let lastScaleOut = Number.NEGATIVE_INFINITY;
  let lastScaleIn = Number.NEGATIVE_INFINITY;
  let lastWake = Number.NEGATIVE_INFINITY;
  let now = 0;

  const closeInstance = (inst: Instance, t: number) => {
    const seconds = t - inst.launchedAt;
    instanceSeconds += seconds;
    costUsd += (seconds / 3600) * (inst.spot ? price.spot : price.onDemand);
    instances.delete(inst);
  };

  const launchInstance = (t: number, ready: boolean): Instance => {
    // The mixed-instances policy: keep the on-demand base, then the on-demand share above it.
    const liveOnDemand = [...instances].filter((i) => !i.spot && !i.doomed).length;
    const onDemand =
      liveOnDemand < config.capacity.onDemandBaseCapacity ||
      rand() * 100 < config.capacity.onDemandPercentageAboveBase;
    const inst: Instance = {
      id: nextId++,
      spot: !onDemand,
      launchedAt: t,
      ready,
      doomed: false,
      task: undefined,
      emptySince: t,
    };
    instances.add(inst);
    if (!ready) q.push(t + config.capacity.instanceBootSeconds, { kind: 'instanceReady', instance: inst });
    if (inst.spot && config.spotInterruptionsPerHour > 0) {
      q.push(t + exponential(rand, 3600 / config.spotInterruptionsPerHour), {
        kind: 'spotNotice',
        instance: inst,
      });
    }
    return inst;
  };

  const removeTask = (task: Task, t: number) => {
    tasks.delete(task);
    task.epoch++;
    if (task.instance) {
      task.instance.task = undefined;
      task.instance.emptySince = t;
    }
  };

  /** A task told to stop: finish the job if it fits the grace period, else release it now. */
  const stopTask = (task: Task, t: number, deadline: number) => {
    if (task.state === 'busy' && task.job && task.jobEnd <= Math.min(t + grace, deadline)) {
      task.state = 'stopping';
      return;
    }
    if (task.job) {
      queue.unshift(task.job);
      released++;
      busySeconds += t - task.jobStart;
      task.job = undefined;
    }
    removeTask(task, t);
  };

  const serviceTime = (job: Job, jitter: number) => job.n * model.secondsPerImage * jitter;

  const reconcile = (t: number) => {
    // ECS service: match the number of live tasks to the desired count.
    const live = [...tasks].filter((x) => x.state !== 'stopping');
    if (live.length < desired) {
      for (let i = live.length; i < desired; i++) {
        tasks.add({
          id: nextId++,
          state: 'pending',
          instance: undefined,
          job: undefined,
          jobStart: 0,
          jobEnd: 0,
          epoch: 0,
        });
      }
    } else if (live.length > desired) {
      const order = { pending: 0, loading: 1, idle: 2, busy: 3, stopping: 4 };
      const keyed = live.map((task) => ({ task, key: order[task.state] + rand() }));
      const victims = keyed.sort((a, b) => a.key - b.key).slice(0, live.length - desired);
      for (const v of victims) stopTask(v.task, t, Number.POSITIVE_INFINITY);
    }
    maxTasks = Math.max(maxTasks, [...tasks].filter((x) => x.state !== 'stopping').length);
    // Placement on free instances.
    for (const task of tasks) {
      if (task.state !== 'pending') continue;
      const free = [...instances].find((i) => i.ready && !i.doomed && !i.task);
      if (!free) break;
      free.task = task;
      task.instance = free;
      task.state = 'loading';
      q.push(t + model.modelLoadSeconds, { kind: 'taskReady', task, epoch: task.epoch });
    }
    // Capacity provider: launch for tasks with nowhere to run.
    const waiting = [...tasks].filter((x) => x.state === 'pending').length;
    const booting = [...instances].filter((i) => !i.ready && !i.doomed).length;
    if (waiting > booting && !launchScheduled) {
      launchScheduled = true;
      q.push(t + B.capacityProviderDelaySeconds, { kind: 'launch' });
    }
    // Runners take jobs.
    for (const task of tasks) {
      if (task.state !== 'idle' || queue.length === 0) continue;
      const job = queue.shift()!;
      job.attempts++;
      task.state = 'busy';
      task.job = job;
      const d = serviceTime(job, 0.9 + 0.2 * rand());
      task.jobStart = t;
      task.jobEnd = t + d;
      waits[job.id] = t - job.arrival;
      if (coldJob === job) {
        coldStartWaits.push(t - job.arrival);
        coldJob = undefined;
      }
      q.push(task.jobEnd, { kind: 'jobDone', task, epoch: task.epoch });
    }
  };

  const sample = () => {
    const visible = queue.length;
    const inflight = [...tasks].filter((x) => x.job).length;
    const running = [...tasks].filter((x) => x.state !== 'pending').length;
    return { backlog: (visible + inflight) / Math.max(running, 1), wake: desired < 1 && visible > 0 };
  };

  const evaluate = (t: number) => {
    // Alarms see the datapoint of the previous period (CloudWatch publishing delay).
    const s = samples.at(-2);
    if (!s) return;
    const wakeWindow = samples.slice(-1 - config.scaling.wakeEvaluationPeriods, -1);
    if (
      wakeWindow.length === config.scaling.wakeEvaluationPeriods &&
      wakeWindow.every((x) => x.wake) &&
      desired < 1 &&
      t - lastWake >= config.scaling.scaleOutCooldownSeconds
    ) {
      desired = Math.min(model.maxTasks, desired + 1);
      lastWake = t;
      if (idleSince !== undefined) wakeDelays.push(t - idleSince);
      idleSince = undefined;
    }
    if (t % B.metricPeriodSeconds !== 0) return;
    const perMinute = samples
      .filter((_, i) => ((i + 1) * tickEvery) % B.metricPeriodSeconds === 0)
      .slice(0, -1);
    const last = (k: number) => perMinute.slice(-k);
    const target = model.targetBacklogPerTask;
    const high = last(B.targetTrackingHighDatapoints);
    if (
      high.length === B.targetTrackingHighDatapoints &&
      high.every((x) => x.backlog > target) &&
      t - lastScaleOut >= config.scaling.scaleOutCooldownSeconds
    ) {
      const next = Math.min(model.maxTasks, Math.ceil((desired * s.backlog) / target));
      if (next > desired) {
        desired = next;
        lastScaleOut = t;
      }
    }
    const low = last(B.targetTrackingLowDatapoints);
    if (
      low.length === B.targetTrackingLowDatapoints &&
      low.every((x) => x.backlog < B.scaleInThreshold * target) &&
      t - lastScaleIn >= config.scaling.scaleInCooldownSeconds &&
      t - lastScaleOut >= config.scaling.scaleOutCooldownSeconds
    ) {
      const next = Math.max(model.minTasks, Math.ceil((desired * s.backlog) / target));
      if (next < desired) {
        desired = next;
        lastScaleIn = t;
        if (desired === 0) idleSince = undefined;
      }
    }
  };

  // A warm start: the minimum is running when the trace begins.
  for (let i = 0; i < model.minTasks; i++) {
    const inst = launchInstance(0, true);
    const task: Task = {
      id: nextId++,
      state: 'idle',
      instance: inst,
      job: undefined,
      jobStart: 0,
      jobEnd: 0,
      epoch: 0,
    };
    inst.task = task;
    tasks.add(task);
  }
  for (const [i, a] of trace.arrivals.entries())
    q.push(a.t, { kind: 'arrival', job: { id: i, arrival: a.t, n: a.n, attempts: 0 } });
  q.push(0, { kind: 'tick' });

  let totalImages = 0;
  for (const a of trace.arrivals) totalImages += a.n;
  const hardStop = trace.durationSeconds + 48 * 3600;
  let done = 0;
  let finished = false;

  while (q.size > 0 && !finished) {
    const e = q.pop()!;
    if (e.t > hardStop) {
      now = hardStop;
      break;
    }
    now = e.t;
    switch (e.kind) {
      case 'arrival':
        queue.push(e.job);
        if (desired === 0 && tasks.size === 0) {
          idleSince ??= now;
          coldJob ??= e.job;
        }
        break;
      case 'tick': {
        samples.push(sample());
        evaluate(now);
        for (const inst of [...instances]) {
          if (
            inst.ready &&
            !inst.task &&
            !inst.doomed &&
            now - inst.emptySince >= B.emptyInstanceTerminateSeconds
          ) {
            closeInstance(inst, now);
          }
        }
        // Stop once the trace is over and every job is done (later events are idle capacity only).
        finished = done === trace.arrivals.length && now >= trace.durationSeconds;
        if (!finished) q.push(now + tickEvery, { kind: 'tick' });
        break;
      }
      case 'launch': {
        launchScheduled = false;
        const waiting = [...tasks].filter((x) => x.state === 'pending').length;
        const booting = [...instances].filter((i) => !i.ready && !i.doomed).length;
        const room = model.maxTasks - [...instances].filter((i) => !i.doomed).length;
        for (let i = 0; i < Math.min(waiting - booting, room); i++) launchInstance(now, false);
        break;
      }
      case 'instanceReady':
        if (!instances.has(e.instance)) break;
        e.instance.ready = true;
        e.instance.emptySince = now;
        break;
      case 'taskReady':
        if (e.epoch !== e.task.epoch || !tasks.has(e.task)) break;
        e.task.state = 'idle';
        break;
      case 'jobDone': {
        const task = e.task;
        if (e.epoch !== task.epoch || !task.job) break;
        const job = task.job;
        completions.set(job.id, (completions.get(job.id) ?? 0) + 1);
        done++;
        busySeconds += now - task.jobStart;
        task.job = undefined;
        if (task.state === 'stopping') removeTask(task, now);
        else task.state = 'idle';
        break;
      }
      case 'spotNotice': {
        const inst = e.instance;
        if (!instances.has(inst)) break;
        spotInterruptions++;
        inst.doomed = true;
        if (inst.task) stopTask(inst.task, now, now + B.spotNoticeSeconds);
        q.push(now + B.spotNoticeSeconds, { kind: 'instanceGone', instance: inst });
        break;
      }
      case 'instanceGone': {
        const inst = e.instance;
        if (!instances.has(inst)) break;
        if (inst.task) stopTask(inst.task, now, now);
        closeInstance(inst, now);
        break;
      }
    }
    reconcile(now);
  }
  for (const inst of [...instances]) closeInstance(inst, now);

  const sorted = waits.filter((w) => w !== undefined).sort((a, b) => a - b);
  return {
    preset: config.preset,
    trace: trace.name,
    model: model.id,
    jobs: trace.arrivals.length,
    images: totalImages,
    completions,
    waits: sorted,
    p50WaitSeconds: quantile(sorted, 0.5),
    p95WaitSeconds: quantile(sorted, 0.95),
    gpuUtilisation: instanceSeconds > 0 ? busySeconds / instanceSeconds : 0,
    instanceHours: instanceSeconds / 3600,
    costUsd,
    costPer1000Images: totalImages > 0 ? (costUsd / totalImages) * 1000 : 0,
    maxTasks,
    wakeDelays,
    coldStartWaits,
    spotInterruptions,
    released,
    endSeconds: now,
  };
}
