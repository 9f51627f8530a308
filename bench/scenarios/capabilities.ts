import { fileURLToPath } from 'node:url';
import type { CapabilitiesApi } from '../lib/apis.js';
import { Child } from '../lib/ipc.js';
import { errorText, type Context, withinBudget } from './common.js';

const CAPABILITIES_SCRIPT = fileURLToPath(new URL('../procs/capabilities.js', import.meta.url));

/**
 * Scenario 9: capabilities measured in a process of their own, beside their plain path: the
 * `@OnWseEvent` pipeline (bare, guard, guard + ValidationPipe, against the method called
 * directly) and the client's parse-and-dispatch rate (plain and stamped messages). History
 * topics and recovery are measured in the cross-instance scenario (`wse-history`).
 */
export async function capabilitiesScenario(ctx: Context): Promise<void> {
  const { capabilities, reps } = ctx.config;
  for (let rep = 1; rep <= reps; rep++) {
    if (!withinBudget(ctx, `capabilities, repetition ${rep}`)) continue;
    let child: Child<CapabilitiesApi> | undefined;
    try {
      child = await Child.spawn<CapabilitiesApi>('capabilities', CAPABILITIES_SCRIPT);
      const e = await child.call('eventPipeline', { events: capabilities.events });
      for (const [kase, usPerEvent] of [
        ['direct', e.directUs],
        ['pipeline', e.pipelineUs],
        ['guard', e.guardUs],
        ['guard+pipe', e.guardPipeUs],
      ] as const) {
        ctx.results.add('events', kase, 'wse', rep, { usPerEvent, eventsPerSec: 1e6 / usPerEvent });
      }
      ctx.log(
        `  events #${rep}: direct ${e.directUs.toFixed(2)} us, pipeline ${e.pipelineUs.toFixed(2)} us, guard ` +
          `${e.guardUs.toFixed(2)} us, guard+ValidationPipe ${e.guardPipeUs.toFixed(2)} us per event`,
      );
      for (const stamped of [false, true]) {
        const rate = await child.call('clientDispatch', { messages: capabilities.clientMessages, stamped });
        ctx.results.add('client', stamped ? 'stamped' : 'plain', 'wse', rep, { messagesPerSec: rate });
        ctx.log(`  client dispatch #${rep}, ${stamped ? 'stamped' : 'plain'} messages: ${Math.round(rate)} msg/s`);
      }
    } catch (error) {
      ctx.results.note(`capabilities, repetition ${rep}: ${errorText(error)}`);
    } finally {
      await child?.kill();
    }
  }
}
