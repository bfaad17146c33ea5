import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { loadConfig } from './src/config/app-config';
import { buildDataSourceOptions } from './src/database/data-source-options';
import { resolveDatabase } from './src/database/database-setup';

/**
 * The DataSource of the TypeORM CLI (npm run migration:*), built from the same configuration
 * code as the service: DATABASE_DIRECT_URL or DATABASE_URL when set, else the embedded PostgreSQL
 * (started if needed).
 * It uses the migration settings, without the service's short statement timeout.
 */
async function createMigrationDataSource(): Promise<DataSource> {
  const config = loadConfig(process.env, { requireProductionAuth: false });
  const { url } = await resolveDatabase(config, new Logger('Migrations'));
  if (config.database.pooler === 'transaction' && config.database.directUrl === undefined) {
    throw new Error('DATABASE_POOLER=transaction: set DATABASE_DIRECT_URL to PostgreSQL itself; migrations cannot run through a transaction pooler');
  }
  return new DataSource(buildDataSourceOptions(config.database, config.database.directUrl ?? url, 'migrations'));
}

export default createMigrationDataSource();
