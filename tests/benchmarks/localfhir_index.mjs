// Benchmark-only preload for localfhir (node --import) removing two costs that grow with the
// number of resources on the server, so the population run measures the service, not them:
//
// 1. Search: Medplum's MemoryRepository.searchSync scans every resource of a type. At 2,000
//    patients (~40,000 resources) a screening's read batch costs ~170 ms of scanning; real FHIR
//    servers index the patient compartment. Here a patient/identifier index picks candidates,
//    and every candidate is still matched against all filters by Medplum's own code, so results
//    are the same as without it (a superset index: entries are only ever added).
// 2. Transactions: server.mjs copies the whole repository (LocalRepository.snapshot) before
//    every transaction to roll back on failure, ~45 ms per write at 40,000 resources. Here
//    snapshot() starts an undo journal of the resources a transaction touches instead, and
//    restore() undoes exactly those (same all-or-nothing result, cost proportional to the
//    transaction).
//
// Loaded by tests/benchmarks/fhir_server.py through NODE_OPTIONS="--import <this file>"; the
// module resolves @medplum/fhir-router from LOCALFHIR_DIR (the localfhir package folder) so
// it patches the very module instance server.mjs imports.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// @medplum/core needs a global WebSocket at load time; Node 20 has none (server.mjs does the
// same and keeps this stub: the server never opens a socket).
globalThis.WebSocket ??= class WebSocket {
  constructor() {
    throw new Error('WebSocket is not available in localfhir');
  }
};

const dir = process.env.LOCALFHIR_DIR;
if (!dir) throw new Error('localfhir_index.mjs needs LOCALFHIR_DIR');
const pkgDir = join(dir, 'node_modules', '@medplum', 'fhir-router');
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
const entry = pkg.exports?.import?.default ?? pkg.module;
const { MemoryRepository } = await import(pathToFileURL(join(pkgDir, entry)).href);

const INDEXED = new Set(['patient', 'subject', 'identifier']);
const originalCreate = MemoryRepository.prototype.createResourceSync;
const originalSearch = MemoryRepository.prototype.searchSync;
const originalDelete = MemoryRepository.prototype.deleteResource;

// ---------------------------------------------------------------- transaction undo journal
let journal = null; // the open transaction's { repo, seen, entries }

// Record a resource's state before its first change inside the open transaction.
function remember(repo, type, id, absent = false) {
  if (!journal || journal.repo !== repo) return;
  const key = `${type}/${id}`;
  if (journal.seen.has(key)) return;
  journal.seen.add(key);
  journal.entries.push({
    type,
    id,
    key,
    resource: absent ? undefined : repo.resources.get(type)?.get(id),
    historyLength: absent ? undefined : repo.history.get(type)?.get(id)?.length,
    hadVersion: !absent && repo.versions?.has(key),
    version: absent ? undefined : repo.versions?.get(key),
    deleted: !absent && Boolean(repo.deleted?.has(key)),
  });
}

function undo(repo, entries) {
  for (const e of [...entries].reverse()) {
    const byId = repo.resources.get(e.type);
    if (e.resource === undefined) byId?.delete(e.id);
    else byId?.set(e.id, e.resource);
    const versions = repo.history.get(e.type);
    if (e.historyLength === undefined) versions?.delete(e.id);
    else versions?.get(e.id)?.splice(e.historyLength);
    if (repo.versions) {
      if (e.hadVersion) repo.versions.set(e.key, e.version);
      else repo.versions.delete(e.key);
    }
    if (repo.deleted) {
      if (e.deleted) repo.deleted.add(e.key);
      else repo.deleted.delete(e.key);
    }
  }
}

// server.mjs's repository class is not exported: patch its prototype through the instance.
function patchSnapshots(repo) {
  const proto = Object.getPrototypeOf(repo);
  if (proto === MemoryRepository.prototype || proto.benchJournaled) return;
  if (!Object.hasOwn(proto, 'snapshot') || !Object.hasOwn(proto, 'restore')) return;
  const originalRestore = proto.restore;
  proto.snapshot = function snapshot() {
    journal = { repo: this, seen: new Set(), entries: [], journaled: true };
    return journal;
  };
  proto.restore = function restore(snap) {
    if (!snap?.journaled) return originalRestore.call(this, snap);
    undo(this, snap.entries);
    if (journal === snap) journal = null;
  };
  proto.benchJournaled = true;
}

function indexOf(repo) {
  repo.benchIndex ??= new Map(); // key ("Patient/1" or "identifier:system|value") -> Map(type -> Set(id))
  return repo.benchIndex;
}

function add(index, key, type, id) {
  let byType = index.get(key);
  if (!byType) index.set(key, (byType = new Map()));
  let ids = byType.get(type);
  if (!ids) byType.set(type, (ids = new Set()));
  ids.add(id);
}

function patientRefs(value, out) {
  if (Array.isArray(value)) {
    for (const v of value) patientRefs(v, out);
  } else if (value && typeof value === 'object') {
    if (typeof value.reference === 'string' && value.reference.startsWith('Patient/')) out.add(value.reference);
    for (const v of Object.values(value)) if (v && typeof v === 'object') patientRefs(v, out);
  }
  return out;
}

MemoryRepository.prototype.createResourceSync = function createResourceSync(resource, options, update) {
  patchSnapshots(this);
  if (resource?.id) remember(this, resource.resourceType, resource.id);
  const result = originalCreate.call(this, resource, options, update);
  if (!resource?.id) remember(this, result.resourceType, result.id, true);
  const index = indexOf(this);
  const { resourceType: type, id } = result;
  const refs = patientRefs(result, new Set());
  if (type === 'Patient') refs.add(`Patient/${id}`);
  for (const ref of refs) add(index, ref, type, id);
  for (const ident of result.identifier ?? []) {
    if (ident?.value) add(index, `identifier:${ident.system ?? ''}|${ident.value}`, type, id);
  }
  return result;
};

// Candidate ids for one indexable filter, or undefined when the filter cannot use the index.
function candidates(index, type, filter) {
  if (!INDEXED.has(filter.code) || filter.operator !== 'eq' || typeof filter.value !== 'string') return undefined;
  const keys = [];
  for (const raw of filter.value.split(',')) {
    if (!raw || raw.includes('\\')) return undefined;
    if (filter.code === 'identifier') {
      if (!raw.includes('|')) return undefined; // value without system: scan
      keys.push(`identifier:${raw}`);
    } else if (raw.startsWith('Patient/')) {
      keys.push(raw);
    } else if (/^[A-Za-z0-9\-.]{1,64}$/.test(raw)) {
      keys.push(`Patient/${raw}`);
    } else if (!raw.includes('/')) {
      return undefined;
    }
    // Other reference types (subject=Group/1) match nothing of the patient index: skipped.
  }
  const out = new Set();
  for (const key of keys) for (const id of index.get(key)?.get(type) ?? []) out.add(id);
  return out;
}

MemoryRepository.prototype.deleteResource = function deleteResource(resourceType, id, options) {
  patchSnapshots(this);
  remember(this, resourceType, id);
  return originalDelete.call(this, resourceType, id, options);
};

MemoryRepository.prototype.searchSync = function searchSync(request) {
  patchSnapshots(this);
  const index = this.benchIndex;
  const all = this.resources.get(request.resourceType);
  if (!index || !all) return originalSearch.call(this, request);
  let chosen;
  for (const filter of request.filters ?? []) {
    const ids = candidates(index, request.resourceType, filter);
    if (ids && (!chosen || ids.size < chosen.size)) chosen = ids;
  }
  if (!chosen) return originalSearch.call(this, request);
  const subset = new Map();
  for (const id of chosen) {
    const resource = all.get(id);
    if (resource) subset.set(id, resource);
  }
  const view = new Map(this.resources);
  view.set(request.resourceType, subset);
  return originalSearch.call(Object.assign(Object.create(this), { resources: view }), request);
};
