import { Global, Module } from '@nestjs/common';
import { GracefulShutdown } from './graceful-shutdown';
import { ShutdownState } from './shutdown-state';

@Global()
@Module({
  providers: [ShutdownState, GracefulShutdown],
  exports: [ShutdownState, GracefulShutdown],
})
export class LifecycleModule {}
