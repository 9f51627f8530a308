import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { WseConfigError } from '../../errors/wse-config.error.js';
import type { InboundFrame } from '../../protocol/inbound-frame.js';
import type { WseConnectionInfo } from '../../protocol/connection.js';
import { WSE_CONNECT_HANDLER, WSE_DISCONNECT_HANDLER, WSE_EVENT_HANDLER } from '../../wse.constants.js';

/** The event type of the catch-all handler: `@OnWseEvent('*')` gets every event without a handler of its own. */
export const WSE_ANY_EVENT = '*';

/** The second argument of an `@OnWseEvent` handler. */
export interface WseEventContext {
  readonly connection: WseConnectionInfo;
  /** The whole frame: its `t` (what a catch-all handler branches on) and its `id` / `cid` correlation fields. */
  readonly frame: InboundFrame;
}

export type WseEventHandler = (payload: Readonly<Record<string, unknown>>, context: WseEventContext) => unknown;
export type WseConnectHandler = (connection: WseConnectionInfo) => unknown;
export type WseDisconnectHandler = (connection: WseConnectionInfo, code: number) => unknown;

/**
 * Finds the application's `@OnWseEvent`, `@OnWseConnect` and `@OnWseDisconnect` methods once,
 * at module init, and binds them to their provider instances. Nothing is looked up per message.
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
          this.eventHandlers.set(eventType, bound);
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
