# syntax=docker/dockerfile:1

# Build: install every dependency, compile TypeScript to dist/, then drop the dev dependencies.
FROM node:24-bookworm-slim AS build
# npm 11 honours package.json "allowScripts" (the embedded PostgreSQL package's install script).
RUN npm install -g npm@11
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ormconfig.ts ./
COPY src ./src
COPY migrations ./migrations
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev

# Runtime: compiled code and production dependencies only, run as the image's non-root user.
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
EXPOSE 3000
# The same file as package.json's start:prod script.
CMD ["node", "--max-semi-space-size=16", "--no-concurrent-recompilation", "--heap-growing-percent=25", "dist/src/main.js"]
