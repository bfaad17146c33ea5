import { Module } from '@nestjs/common';
import { DbActivityController } from './db-activity.controller';
import { DbActivityRepository } from './db-activity.repository';

@Module({ controllers: [DbActivityController], providers: [DbActivityRepository] })
export class AdminModule {}
