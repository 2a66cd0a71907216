import type { HostFacts } from '../../db/entities/index.js';

/**
 * Host facts in ONE remote round trip (fast: one exec per host). Sections are separated by marker
 * lines; nothing needs root; a missing tool (no GPU → no nvidia-smi) leaves its section empty.
 */
export const LINUX_FACTS_COMMAND = [
  'echo ===lscpu===; (LC_ALL=C lscpu -J 2>/dev/null || LC_ALL=C lscpu 2>/dev/null)',
  'echo ===meminfo===; cat /proc/meminfo',
  'echo ===lsblk===; (lsblk -J -b -d -o NAME,SIZE,TYPE,MODEL,ROTA 2>/dev/null || true)',
  'echo ===os===; cat /etc/os-release 2>/dev/null',
  'echo ===kernel===; uname -r',
  'echo ===hostname===; hostname',
  'echo ===gpu===; if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi --query-gpu=index,name,memory.total,driver_version,uuid --format=csv,noheader,nounits 2>/dev/null; fi',
  "echo ===cuda===; if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi 2>/dev/null | grep -o 'CUDA Version: *[0-9.]*' | head -n 1; fi",
  'true',
].join('; ');

function sections(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  let current: string | null = null;
  const buf: string[] = [];
  const flush = () => {
    if (current) out.set(current, buf.join('\n').trim());
    buf.length = 0;
  };
  for (const line of stdout.split('\n')) {
    const m = /^===([a-z]+)===$/.exec(line.trim());
    if (m) {
      flush();
      current = m[1]!;
    } else buf.push(line);
  }
  flush();
  return out;
}

function parseLscpu(text: string): HostFacts['cpu'] | undefined {
  if (!text) return undefined;
  const fields = new Map<string, string>();
  try {
    const json = JSON.parse(text) as { lscpu: Array<{ field: string; data: string; children?: unknown[] }> };
    const walk = (items: Array<{ field: string; data: string; children?: unknown[] }>) => {
      for (const i of items) {
        fields.set(i.field.replace(/:$/, '').trim(), String(i.data ?? '').trim());
        if (Array.isArray(i.children)) walk(i.children as never);
      }
    };
    walk(json.lscpu);
  } catch {
    for (const line of text.split('\n')) {
      const idx = line.indexOf(':');
      if (idx > 0) fields.set(line.slice(0, idx).trim(), line.slice(idx + 1).trim());
    }
  }
  const cores = Number(fields.get('CPU(s)'));
  const model = fields.get('Model name') ?? fields.get('Model') ?? 'unknown';
  if (!Number.isFinite(cores)) return undefined;
  const sockets = Number(fields.get('Socket(s)'));
  const tpc = Number(fields.get('Thread(s) per core'));
  return { model, cores, ...(Number.isFinite(sockets) ? { sockets } : {}), ...(Number.isFinite(tpc) ? { threadsPerCore: tpc } : {}) };
}

/** Parses the output of LINUX_FACTS_COMMAND; tolerant of missing sections. */
export function parseLinuxFacts(stdout: string): HostFacts {
  const s = sections(stdout);
  const facts: HostFacts = {};
  const cpu = parseLscpu(s.get('lscpu') ?? '');
  if (cpu) facts.cpu = cpu;
  const mem = /^MemTotal:\s+(\d+)\s*kB/m.exec(s.get('meminfo') ?? '');
  if (mem) facts.memoryBytes = Number(mem[1]) * 1024;
  try {
    const blk = JSON.parse(s.get('lsblk') || '{"blockdevices":[]}') as { blockdevices: Array<{ name: string; size: number | string; type: string; model?: string | null; rota?: boolean | string }> };
    facts.disks = blk.blockdevices
      .filter((d) => d.type === 'disk')
      .map((d) => ({ name: d.name, sizeBytes: Number(d.size), ...(d.model ? { model: String(d.model).trim() } : {}), rotational: d.rota === true || d.rota === '1' }));
  } catch {
    facts.disks = [];
  }
  const osRelease = new Map((s.get('os') ?? '').split('\n').map((l) => l.split('=')).filter((kv) => kv.length >= 2).map(([k, ...v]) => [k!, v.join('=').replace(/^"|"$/g, '')]));
  facts.os = { name: osRelease.get('PRETTY_NAME') ?? osRelease.get('NAME') ?? 'unknown', version: osRelease.get('VERSION_ID') ?? '', kernel: s.get('kernel') ?? '' };
  if (s.get('hostname')) facts.hostname = s.get('hostname');
  facts.gpus = (s.get('gpu') ?? '')
    .split('\n')
    .map((l) => l.split(',').map((x) => x.trim()))
    .filter((c) => c.length >= 4 && c[1])
    .map(([index, name, mem, driver, uuid]) => ({ index: Number(index), model: name!, memoryMiB: Number(mem), driver: driver!, ...(uuid ? { uuid } : {}) }));
  const cuda = /CUDA Version:\s*([0-9.]+)/.exec(s.get('cuda') ?? '');
  if (cuda) facts.cuda = cuda[1];
  return facts;
}

/** Windows facts via CIM, one PowerShell script, JSON out. */
export const WINDOWS_FACTS_SCRIPT = [
  "$ErrorActionPreference = 'Stop'",
  '$cpu = @(Get-CimInstance Win32_Processor)',
  '$cs = Get-CimInstance Win32_ComputerSystem',
  '$os = Get-CimInstance Win32_OperatingSystem',
  '$disks = @(Get-CimInstance Win32_DiskDrive | ForEach-Object { @{ name = $_.DeviceID; sizeBytes = [int64]$_.Size; model = $_.Model } })',
  '$gpus = @(Get-CimInstance Win32_VideoController | ForEach-Object { @{ model = $_.Name; memoryMiB = [math]::Round($_.AdapterRAM / 1MB); driver = $_.DriverVersion } })',
  '@{ cpuModel = $cpu[0].Name; cores = ($cpu | Measure-Object -Property NumberOfLogicalProcessors -Sum).Sum; memoryBytes = [int64]$cs.TotalPhysicalMemory; hostname = $cs.Name; osName = $os.Caption; osVersion = $os.Version; disks = $disks; gpus = $gpus } | ConvertTo-Json -Compress -Depth 4',
].join('\n');

export function parseWindowsFacts(stdout: string): HostFacts {
  const j = JSON.parse(stdout.trim().split('\n').filter((l) => l.trim().startsWith('{')).pop() ?? '{}') as {
    cpuModel?: string; cores?: number; memoryBytes?: number; hostname?: string; osName?: string; osVersion?: string;
    disks?: Array<{ name: string; sizeBytes: number; model?: string }>; gpus?: Array<{ model: string; memoryMiB: number; driver?: string }>;
  };
  return {
    ...(j.cpuModel ? { cpu: { model: j.cpuModel.trim(), cores: Number(j.cores ?? 0) } } : {}),
    ...(j.memoryBytes ? { memoryBytes: Number(j.memoryBytes) } : {}),
    disks: (j.disks ?? []).map((d) => ({ name: d.name, sizeBytes: Number(d.sizeBytes), ...(d.model ? { model: d.model } : {}) })),
    gpus: (j.gpus ?? []).map((g, index) => ({ index, model: g.model, memoryMiB: Number(g.memoryMiB), driver: g.driver ?? '' })),
    os: { name: j.osName ?? 'Windows', version: j.osVersion ?? '', kernel: j.osVersion ?? '' },
    ...(j.hostname ? { hostname: j.hostname } : {}),
  };
}

/** Do the collected GPUs match what the operator expected? (model: case-insensitive substring) */
export function compareExpectedGpus(facts: HostFacts, expected?: { model?: string; count?: number }): { matches: boolean; differences: string[] } {
  const differences: string[] = [];
  if (!expected) return { matches: true, differences };
  const gpus = facts.gpus ?? [];
  if (expected.count !== undefined && gpus.length !== expected.count) differences.push(`expected ${expected.count} GPUs, found ${gpus.length}`);
  if (expected.model) {
    const wrong = gpus.filter((g) => !g.model.toLowerCase().includes(expected.model!.toLowerCase()));
    if (wrong.length || gpus.length === 0) differences.push(`expected ${expected.model}, found ${gpus.map((g) => g.model).join(', ') || 'no GPU'}`);
  }
  return { matches: differences.length === 0, differences };
}
