import { Global, Module } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { Authenticator, IDENTITY_PROVIDER } from './authenticator';
import { IdentityProvider } from './identity-provider';

/** Token verification for AuthGuard, the rate limiter and the readiness check. */
@Global()
@Module({
  providers: [
    {
      provide: IDENTITY_PROVIDER,
      inject: [APP_CONFIG],
      useFactory: ({ auth }: AppConfig): IdentityProvider | null =>
        auth.identityProvider === undefined ? null : new IdentityProvider(auth.identityProvider, auth.clockToleranceS),
    },
    Authenticator,
  ],
  exports: [Authenticator, IDENTITY_PROVIDER],
})
export class AuthModule {}
