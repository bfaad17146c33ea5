import { Global, Module } from '@nestjs/common';
import { JobRunner } from './job-runner';

/** The periodic job runner, for the features whose jobs schedule themselves with it. */
@Global()
@Module({ providers: [JobRunner], exports: [JobRunner] })
export class JobsModule {}
