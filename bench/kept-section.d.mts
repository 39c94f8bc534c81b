// Types of bench/kept-section.mjs, for test/unit/bench-kept-section.test.ts (tsconfig checks no JavaScript).
export declare const KEPT_BEGIN: string;
export declare const KEPT_END: string;
export declare function keptSection(md: string): { section?: string; problem?: string };
export declare function withKeptSection(md: string, section: string | undefined): string;
