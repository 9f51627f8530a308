import { Inject } from '@nestjs/common';
import { WSE_OPTIONS } from '../wse.constants.js';

/** Injects the `ResolvedWseOptions` of the running `WseModule`. */
export const InjectWseOptions = (): ParameterDecorator => Inject(WSE_OPTIONS);
