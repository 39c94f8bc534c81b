// The package version, put in by the bundler (scripts/build.mjs); "dev" when run from source.

declare const __IMMICH_FIRSTBOOT_VERSION__: string | undefined;

export const VERSION: string =
  typeof __IMMICH_FIRSTBOOT_VERSION__ === 'string' ? __IMMICH_FIRSTBOOT_VERSION__ : '0.0.0-dev';
