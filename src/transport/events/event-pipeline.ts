import { Injectable, type ArgumentsHost } from '@nestjs/common';
import { EXCEPTION_FILTERS_METADATA, selectExceptionFilterMetadata } from '@nestjs/common/internal';
import type { ExceptionFilterMetadata } from '@nestjs/common/internal';
import { ExternalContextCreator, type NestContainer } from '@nestjs/core';
import { ExternalExceptionFilterContext } from '@nestjs/core/exceptions/external-exception-filter-context.js';
import { ExecutionContextHost } from '@nestjs/core/internal';
import { WSE_CONTEXT_TYPE } from './wse-execution-context.js';
import type { WseEventHandler } from './wse-event-context.js';
import {
  DEFAULT_HANDLER_PARAMS,
  WSE_PARAM_ARGS,
  WseParamsFactory,
  type WseHandlerArgs,
} from './wse-params.decorators.js';

type Method = (...args: unknown[]) => unknown;

/**
 * Exception filters of one handler, global ones included. `ExternalContextCreator` builds the
 * same list for its own error proxy, which is not used here (see `WseEventPipeline`); only the
 * lookup is reused, so filters resolve exactly as they do for Nest's other contexts.
 */
class WseExceptionFilterContext extends ExternalExceptionFilterContext {
  /** Method filters first, then class, then global ones: the order Nest picks them in. */
  filtersOf(instance: object, callback: Method, moduleKey: string): ExceptionFilterMetadata[] {
    this.moduleContext = moduleKey;
    return this.createContext<ExceptionFilterMetadata[]>(instance, callback, EXCEPTION_FILTERS_METADATA).reverse();
  }
}

/**
 * Runs `@OnWseEvent` handlers through Nest's request pipeline (issue 16), as
 * `@nestjs/microservices` and `@nestjs/websockets` do for theirs: guards, interceptors, pipes
 * and exception filters at method, class and global level, with the context type `'wse'`
 * (`WseExecutionContext` reads it). Everything is prepared once per handler, at module init;
 * only inbound application events pass here, never fan-out.
 *
 * What a handler run ends in: the handler's value (or a filter's), or an exception that the
 * dispatcher turns into an `error` frame (`eventErrorAnswer`). Filters follow the contract of
 * Nest's WebSocket and RPC contexts: the filter that catches an exception handles it, and what
 * it returns (unless `undefined`) is sent back as a handler's value would be; a filter that
 * throws hands its exception on to that error frame. Nest's own fallback for external contexts
 * is not used, because it logs every unhandled exception, and a client sending invalid payloads
 * must not be able to fill the logs.
 */
@Injectable()
export class WseEventPipeline {
  private readonly paramsFactory = new WseParamsFactory();
  private readonly filterContext: WseExceptionFilterContext;

  constructor(private readonly contextCreator: ExternalContextCreator) {
    // The container (for the application config and its global filters) is private to
    // ExternalContextCreator; Nest creates it from the container and keeps it for this use.
    const container = (contextCreator as unknown as { container?: NestContainer }).container;
    if (container === undefined) {
      throw new Error('nestjs-wse: ExternalContextCreator has no container (an unsupported @nestjs/core version)');
    }
    this.filterContext = new WseExceptionFilterContext(container, container.applicationConfig);
  }

  /** The handler `instance[methodName]`, wrapped in the pipeline. */
  create(instance: object, methodName: string): WseEventHandler {
    const callback = (instance as Record<string, Method>)[methodName];
    this.declareDefaultParams(instance, methodName);
    const run = this.contextCreator.create(
      instance,
      callback,
      methodName,
      WSE_PARAM_ARGS,
      this.paramsFactory,
      undefined,
      undefined,
      { guards: true, interceptors: true, filters: false },
      WSE_CONTEXT_TYPE,
    );
    const moduleKey = this.contextCreator.getContextModuleKey(instance.constructor);
    const filters = this.filterContext.filtersOf(instance, callback, moduleKey);
    const classRef = instance.constructor;
    return async (payload, context) => {
      // The frame's own type: a catch-all handler (@OnWseEvent('*')) serves many.
      const args: WseHandlerArgs = [context.connection, payload, context, context.frame.t];
      try {
        return await run(...args);
      } catch (error) {
        const filter = filters.length === 0 ? undefined : selectExceptionFilterMetadata(filters, error);
        if (filter === undefined) throw error;
        const host = new ExecutionContextHost(args, classRef as never, callback);
        host.setType(WSE_CONTEXT_TYPE);
        return await (filter.func as (exception: unknown, host: ArgumentsHost) => unknown)(error, host);
      }
    };
  }

  /**
   * A handler without parameter decorators keeps its `(payload, context)` signature: the
   * defaults are written where the parameter decorators would have written theirs, which is
   * where `ExternalContextCreator` reads parameters from, so pipes see the payload as a `body`
   * parameter.
   */
  private declareDefaultParams(instance: object, methodName: string): void {
    const host = declaringClass(instance, methodName);
    if (Reflect.getMetadata(WSE_PARAM_ARGS, host, methodName) === undefined) {
      Reflect.defineMetadata(WSE_PARAM_ARGS, DEFAULT_HANDLER_PARAMS, host, methodName);
    }
  }
}

/**
 * The class that declares `methodName`, where parameter decorators store their metadata.
 * `ExternalContextCreator` reads it from that class (Nest 12.5) or from `instance.constructor`
 * (Nest 12.4), whose static prototype chain leads to the declaring class: defined there, the
 * defaults are found by both.
 */
function declaringClass(instance: object, methodName: string): object {
  for (
    let proto: object | null = Object.getPrototypeOf(instance);
    proto !== null;
    proto = Object.getPrototypeOf(proto)
  ) {
    if (Object.hasOwn(proto, methodName)) return (proto as { constructor: object }).constructor;
  }
  return instance.constructor;
}
