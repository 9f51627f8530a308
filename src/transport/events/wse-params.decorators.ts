import type { PipeTransform, Type } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/internal';
import type { ParamsFactory } from '@nestjs/core';
import type { WseEventContext } from './wse-event-context.js';

/**
 * Metadata key of the `@OnWseEvent` parameter decorators: the key of Nest's own route and gateway
 * parameters, because Nest's scanner registers the pipe classes found under it (`@WsePayload('n',
 * ParseIntPipe)`) as injectables of the module, which is where the pipeline resolves them.
 */
export const WSE_PARAM_ARGS = ROUTE_ARGS_METADATA;

/**
 * What an `@OnWseEvent` parameter can be. PAYLOAD is Nest's `body` type (3), so a
 * `ValidationPipe` validates it; the others map to `custom`, which a `ValidationPipe` skips.
 */
export const WseParamtype = {
  CLIENT: 0,
  PAYLOAD: 3,
  FRAME: 20,
  CONTEXT: 21,
} as const;
export type WseParamtype = (typeof WseParamtype)[keyof typeof WseParamtype];

/** One parameter's entry, in the shape Nest's `assignMetadata` writes for route parameters. */
interface WseParamMetadata {
  readonly index: number;
  readonly data: string | undefined;
  readonly pipes: ReadonlyArray<PipeTransform | Type<PipeTransform>>;
}

type PipeArgument = PipeTransform | Type<PipeTransform>;

/**
 * The arguments every `@OnWseEvent` handler is run with, in the order Nest's `switchToWs()`
 * reads them: `[connection, payload, context, eventType]`, so `getClient()` is the connection,
 * `getData()` the payload and `getPattern()` the event type (`WseExecutionContext` reads them too).
 */
export type WseHandlerArgs = [WseEventContext['connection'], unknown, WseEventContext, string];

/**
 * The parameters of a handler without parameter decorators: `(payload, context)`, the
 * signature `@OnWseEvent` has always had. The payload is a `body` parameter, so pipes (a global
 * `ValidationPipe` with the parameter's DTO type) apply to it.
 */
export const DEFAULT_HANDLER_PARAMS: Readonly<Record<string, WseParamMetadata>> = Object.freeze({
  [`${WseParamtype.PAYLOAD}:0`]: { index: 0, data: undefined, pipes: [] },
  [`${WseParamtype.CONTEXT}:1`]: { index: 1, data: undefined, pipes: [] },
});

/** Resolves each decorated parameter from `WseHandlerArgs`. */
export class WseParamsFactory implements ParamsFactory {
  exchangeKeyForValue(type: number, data: unknown, args: WseHandlerArgs | undefined): unknown {
    if (args === undefined) return undefined;
    switch (type) {
      case WseParamtype.CLIENT:
        return args[0];
      case WseParamtype.PAYLOAD: {
        const payload = args[1] as Readonly<Record<string, unknown>>;
        return typeof data === 'string' ? payload[data] : payload;
      }
      case WseParamtype.FRAME:
        return args[2].frame;
      case WseParamtype.CONTEXT:
        return args[2];
      default:
        return undefined;
    }
  }
}

function paramDecorator(type: WseParamtype, data: string | undefined, pipes: PipeArgument[]): ParameterDecorator {
  return (target, key, index) => {
    if (key === undefined) throw new TypeError('nestjs-wse parameter decorators belong on methods');
    const existing = (Reflect.getMetadata(WSE_PARAM_ARGS, target.constructor, key) ?? {}) as Record<
      string,
      WseParamMetadata
    >;
    const entry: WseParamMetadata = { index, data, pipes };
    Reflect.defineMetadata(WSE_PARAM_ARGS, { ...existing, [`${type}:${index}`]: entry }, target.constructor, key);
  };
}

/**
 * The event's payload (the frame's `p`), or one of its properties, through the pipes given
 * here and the global, class and method ones (a `ValidationPipe` validates it against the
 * parameter's DTO class).
 *
 * Without any parameter decorator a handler is called as `(payload, context)` and the payload
 * is piped the same way. Once one parameter is decorated, decorate each one the handler reads.
 *
 * @example
 * ```ts
 * @OnWseEvent('chat_message')
 * onChat(@WsePayload() message: ChatMessageDto, @WseClient() connection: WseConnectionInfo) { ... }
 *
 * @OnWseEvent('join')
 * onJoin(@WsePayload('room', RoomNamePipe) room: string) { ... }
 * ```
 */
export function WsePayload(property?: string | PipeArgument, ...pipes: PipeArgument[]): ParameterDecorator {
  return typeof property === 'string' || property === undefined
    ? paramDecorator(WseParamtype.PAYLOAD, property, pipes)
    : paramDecorator(WseParamtype.PAYLOAD, undefined, [property, ...pipes]);
}

/** The connection that sent the event (`WseConnectionInfo`): what `switchToWs().getClient()` returns. */
export function WseClient(): ParameterDecorator {
  return paramDecorator(WseParamtype.CLIENT, undefined, []);
}

/** The whole inbound frame (`InboundFrame`), for its `id` / `cid` correlation fields. */
export function WseFrame(): ParameterDecorator {
  return paramDecorator(WseParamtype.FRAME, undefined, []);
}
