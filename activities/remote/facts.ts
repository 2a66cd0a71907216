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

/**
 * Windows facts via CIM, one PowerShell script: one section per CIM class, each the class's
 * properties as JSON (`Select-Object … | ConvertTo-Json -Compress`), as an administrator would
 * query them. The WS-Man stand-in interprets exactly these statements.
 *
 * GPU memory: Win32_VideoController.AdapterRAM is a uint32, so any card with 4 GiB or more reads
 * as at most 4095 MiB (0xFFF00000 or 0xFFFFFFFF). The display adapters' class key in the registry
 * holds the driver's 64-bit `HardwareInformation.qwMemorySize` (what Task Manager and dxdiag show);
 * that is used where it is present, matched by PnP device id, and otherwise the GPU is reported
 * with `memoryCapped: true` (the size is at least what is shown, not exactly it).
 */
export const DISPLAY_CLASS_KEY = 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Class\\{4d36e968-e325-11ce-bfc1-08002be10318}\\0*';
export const WINDOWS_FACTS_SCRIPT = [
  "$ErrorActionPreference = 'Stop'",
  "Write-Output '===processor==='",
  'Get-CimInstance -ClassName Win32_Processor | Select-Object Name, NumberOfCores, NumberOfLogicalProcessors | ConvertTo-Json -Compress',
  "Write-Output '===computersystem==='",
  'Get-CimInstance -ClassName Win32_ComputerSystem | Select-Object Name, TotalPhysicalMemory | ConvertTo-Json -Compress',
  "Write-Output '===os==='",
  'Get-CimInstance -ClassName Win32_OperatingSystem | Select-Object Caption, Version, BuildNumber | ConvertTo-Json -Compress',
  "Write-Output '===disks==='",
  'Get-CimInstance -ClassName Win32_DiskDrive | Select-Object DeviceID, Size, Model, MediaType | ConvertTo-Json -Compress',
  "Write-Output '===gpus==='",
  'Get-CimInstance -ClassName Win32_VideoController | Select-Object Name, AdapterRAM, DriverVersion, PNPDeviceID | ConvertTo-Json -Compress',
  "Write-Output '===gpumemory==='",
  `Get-ItemProperty -Path '${DISPLAY_CLASS_KEY}' -ErrorAction SilentlyContinue | Select-Object DriverDesc, MatchingDeviceId, 'HardwareInformation.qwMemorySize' | ConvertTo-Json -Compress`,
  "Write-Output '===end==='",
].join('\n');

/** AdapterRAM values that mean "4 GiB or more" (the uint32 saturated or the driver's 0xFFF00000). */
const ADAPTER_RAM_CAP = 0xfff00000;

type Json = Record<string, unknown>;
/** ConvertTo-Json prints one object bare and several as an array; nothing at all for none. */
const list = (text: string | undefined): Json[] => {
  const t = (text ?? '').trim();
  if (!t) return [];
  const v = JSON.parse(t) as unknown;
  return (Array.isArray(v) ? v : [v]).filter((x): x is Json => !!x && typeof x === 'object');
};
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : null);
const str = (v: unknown): string | null => (typeof v === 'string' && v.trim() ? v.trim() : null);
/** qwMemorySize is a REG_QWORD (a number) or, with some drivers, REG_BINARY (8 bytes little-endian). */
const qword = (v: unknown): number | null => {
  if (Array.isArray(v) && v.length === 8 && v.every((b) => Number.isInteger(b) && b >= 0 && b < 256)) return Number(Buffer.from(v as number[]).readBigUInt64LE(0));
  return num(v);
};

export function parseWindowsFacts(stdout: string): HostFacts {
  const s = sections(stdout.replace(/\r/g, ''));
  const cpus = list(s.get('processor'));
  const cs = list(s.get('computersystem'))[0] ?? {};
  const os = list(s.get('os'))[0] ?? {};
  const registry = list(s.get('gpumemory'));
  const facts: HostFacts = {};
  if (cpus.length) {
    facts.cpu = {
      model: str(cpus[0]!.Name) ?? 'unknown',
      cores: cpus.reduce((n, c) => n + (num(c.NumberOfLogicalProcessors) ?? 0), 0),
      sockets: cpus.length,
      ...(num(cpus[0]!.NumberOfCores) && num(cpus[0]!.NumberOfLogicalProcessors) ? { threadsPerCore: Math.round(num(cpus[0]!.NumberOfLogicalProcessors)! / num(cpus[0]!.NumberOfCores)!) } : {}),
    };
  }
  const mem = num(cs.TotalPhysicalMemory);
  if (mem) facts.memoryBytes = mem;
  facts.disks = list(s.get('disks')).map((d) => ({
    name: str(d.DeviceID) ?? '',
    sizeBytes: num(d.Size) ?? 0,
    ...(str(d.Model) ? { model: str(d.Model)! } : {}),
  }));
  facts.gpus = list(s.get('gpus')).map((g, index) => {
    const pnp = (str(g.PNPDeviceID) ?? '').toLowerCase();
    // The class key's MatchingDeviceId is a prefix of the adapter's PnP id (pci\ven_10de&dev_2230 …).
    const reg = registry.find((r) => {
      const m = (str(r.MatchingDeviceId) ?? '').toLowerCase();
      return m && pnp.startsWith(m);
    }) ?? registry.find((r) => str(r.DriverDesc) !== null && str(r.DriverDesc) === str(g.Name));
    const exact = reg ? qword(reg['HardwareInformation.qwMemorySize']) : null;
    const adapterRam = num(g.AdapterRAM) ?? 0;
    const base = { index, model: str(g.Name) ?? 'unknown', driver: str(g.DriverVersion) ?? '' };
    if (exact && exact > 0) return { ...base, memoryMiB: Math.round(exact / 2 ** 20), memorySource: 'registry' as const };
    return { ...base, memoryMiB: Math.round(adapterRam / 2 ** 20), memorySource: 'adapter-ram' as const, ...(adapterRam >= ADAPTER_RAM_CAP ? { memoryCapped: true } : {}) };
  });
  facts.os = { name: str(os.Caption) ?? 'Windows', version: str(os.Version) ?? '', kernel: str(os.BuildNumber) ?? str(os.Version) ?? '' };
  if (str(cs.Name)) facts.hostname = str(cs.Name)!;
  return facts;
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
