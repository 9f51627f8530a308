import { Injectable } from '@nestjs/common';
import { InjectWseOptions } from '../../config/inject-wse-options.decorator.js';
import type { ResolvedWseOptions } from '../../config/wse-module-options.interface.js';
import { WseConfigError } from '../../errors/wse-config.error.js';
import { compileTopicRules, type TopicRules } from '../../hub/topic-rules.js';
import type { WseConnectionInfo } from '../../protocol/connection.js';

/**
 * The operator's subscription rules (`subscriptions` option), compiled once when the module
 * starts: a rule that cannot mean anything stops start-up with a `WseConfigError` naming it.
 * Without the option every topic is allowed, as before.
 */
@Injectable()
export class WseTopicPermissions {
  private readonly rules: TopicRules | undefined;

  constructor(@InjectWseOptions() options: ResolvedWseOptions) {
    const subscriptions = options.subscriptions;
    if (subscriptions === undefined) return;
    const compiled = compileTopicRules(subscriptions.allow, subscriptions.deny, subscriptions.claim);
    if (!compiled.ok) throw new WseConfigError(compiled.problems);
    this.rules = compiled.rules;
  }

  /** True when rules are configured. */
  get active(): boolean {
    return this.rules !== undefined;
  }

  /** Why `connection` may not subscribe to `topic` (exact or pattern), or `undefined` when it may. */
  refusal(connection: WseConnectionInfo, topic: string): string | undefined {
    return this.rules?.forClaims(connection.claims).refusal(topic);
  }
}
