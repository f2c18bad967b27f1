#!/usr/bin/env node
// Written by shipit. Runs this platform's build of the binary, which npm installed as one of
// this package's optional dependencies (there is no install script to download it).
"use strict";

const { spawnSync } = require("child_process");
const fs = require("fs");

const BIN = __BIN__;
const PLATFORMS = __PLATFORMS__;

// "glibc" or "musl" on Linux, as npm's own `libc` check reads it; null elsewhere.
function libc() {
  if (process.platform !== "linux") return null;
  try {
    if (process.report) {
      process.report.excludeNetwork = true;
      const header = process.report.getReport().header;
      if (header.glibcVersionRuntime) return "glibc";
    }
  } catch (_) {
    // Fall through to the file check.
  }
  try {
    return fs.readFileSync("/usr/bin/ldd", "utf8").includes("musl") ? "musl" : "glibc";
  } catch (_) {
    return "musl";
  }
}

function binary() {
  const mine = libc();
  for (const p of PLATFORMS) {
    if (p.os !== process.platform || !p.cpu.includes(process.arch)) continue;
    if (p.libc && p.libc !== mine) continue;
    try {
      return require.resolve(`${p.package}/bin/${BIN}${p.os === "win32" ? ".exe" : ""}`);
    } catch (_) {
      // Not installed here: npm skipped it (--no-optional, another platform); try the next.
    }
  }
  const supported = PLATFORMS.map((p) => p.package).join(", ");
  process.stderr.write(
    `${BIN}: no build for ${process.platform}-${process.arch}${libc() ? ` (${libc()})` : ""} is installed.\n` +
      `The builds are: ${supported}. Reinstall without --no-optional / --omit=optional.\n`
  );
  process.exit(1);
}

const child = spawnSync(binary(), process.argv.slice(2), { stdio: "inherit" });
if (child.error) {
  process.stderr.write(`${BIN}: ${child.error.message}\n`);
  process.exit(1);
}
if (child.signal) {
  process.kill(process.pid, child.signal);
}
process.exit(child.status === null ? 1 : child.status);
