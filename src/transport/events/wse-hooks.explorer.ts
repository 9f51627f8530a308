import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { WseConfigError } from '../../errors/wse-config.error.js';
import type { WseConnectionInfo } from '../../protocol/connection.js';
import { WSE_CONNECT_HANDLER, WSE_DISCONNECT_HANDLER, WSE_EVENT_HANDLER } from '../../wse.constants.js';
import { WseEventPipeline } from './event-pipeline.js';
import type { WseEventHandler } from './wse-event-context.js';

/** The event type of the catch-all handler: `@OnWseEvent('*')` gets every event without a handler of its own. */
export const WSE_ANY_EVENT = '*';

export type { WseEventContext, WseEventHandler } from './wse-event-context.js';
export type WseConnectHandler = (connection: WseConnectionInfo) => unknown;
export type WseDisconnectHandler = (connection: WseConnectionInfo, code: number) => unknown;

/**
 * Finds the application's `@OnWseEvent`, `@OnWseConnect` and `@OnWseDisconnect` methods once,
 * at module init, and binds them to their provider instances; event handlers are wrapped in
 * Nest's pipeline (WseEventPipeline) then. Nothing is looked up per message.
 */
@Injectable()
export class WseHooksExplorer implements OnModuleInit {
  readonly eventHandlers = new Map<string, WseEventHandler>();
  readonly connectHandlers: WseConnectHandler[] = [];
  readonly disconnectHandlers: WseDisconnectHandler[] = [];

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    private readonly pipeline: WseEventPipeline,
  ) {}

  onModuleInit(): void {
    const duplicates: string[] = [];
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      if (!wrapper.isDependencyTreeStatic() || typeof instance !== 'object' || instance === null) continue;
      const prototype = Object.getPrototypeOf(instance) as object;
      for (const name of this.scanner.getAllMethodNames(prototype)) {
        const method = (instance as Record<string, unknown>)[name];
        if (typeof method !== 'function') continue;
        const bound = method.bind(instance) as (...args: unknown[]) => unknown;
        const eventType = this.reflector.get<string | undefined>(WSE_EVENT_HANDLER, method);
        if (eventType !== undefined) {
          if (this.eventHandlers.has(eventType)) duplicates.push(eventType);
          this.eventHandlers.set(eventType, this.pipeline.create(instance, name));
        }
        if (this.reflector.get<boolean | undefined>(WSE_CONNECT_HANDLER, method)) this.connectHandlers.push(bound);
        if (this.reflector.get<boolean | undefined>(WSE_DISCONNECT_HANDLER, method))
          this.disconnectHandlers.push(bound);
      }
    }
    if (duplicates.length > 0) {
      throw new WseConfigError(
        duplicates.map((type) => ({ path: `@OnWseEvent('${type}')`, rule: 'one handler per event type', value: type })),
        'WSE event handlers',
      );
    }
  }
}
