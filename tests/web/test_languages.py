"""English and Simplified Chinese pages: the catalogue is complete, the choice is kept.

The catalogue test extracts every string of the pages with Babel (as `./dev messages` does) and
fails for any msgid without a Chinese msgstr, or whose placeholders differ. The page tests sign
in on the seeds, switch to Chinese with the page's own form and read every page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from localfhir import start_local_server
from service.web.languages import TRANSLATIONS, choose
from tests.support.workspace import COORDINATOR, Workspace, workspace

REPO = Path(__file__).resolve().parents[2]
ZH_PO = TRANSLATIONS / "zh_CN" / "LC_MESSAGES" / "messages.po"
LN = "pediatric-ln-cart"
SLE = "refractory-sle-cart"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted(tmp: Path) -> dict[tuple[str | None, str], object]:
    """Every msgid of the pages as `./dev messages` extracts it (babel.cfg)."""
    pot = tmp / "messages.pot"
    CommandLineInterface().run([
        "pybabel", "--quiet", "extract", "-F", str(REPO / "babel.cfg"), "-k", "lazy_gettext",
        "-k", "lazy_pgettext:1c,2", "--no-location", "-o", str(pot), str(REPO / "service"),
    ])
    with pot.open("rb") as f:
        return {(m.context, _first(m.id)): m for m in read_po(f) if m.id}


def _first(text: object) -> str:
    # A plural entry's msgid is (singular, plural); Chinese has one form, msgstr[0].
    return str(text[0] if isinstance(text, (tuple, list)) else text or "")


def catalogue() -> dict[tuple[str | None, str], str]:
    with ZH_PO.open("rb") as f:
        return {(m.context, _first(m.id)): _first(m.string)
                for m in read_po(f, locale="zh_CN") if m.id and not m.fuzzy}


def test_every_string_of_the_pages_has_a_chinese_translation(tmp_path):
    wanted = extracted(tmp_path)
    assert len(wanted) > 150  # the extraction itself worked (templates and Python)
    zh = catalogue()
    untranslated = sorted(k[1] for k in wanted if not zh.get(k, "").strip())
    assert untranslated == [], "run ./dev messages and translate these in " + str(ZH_PO)


def test_translations_keep_every_placeholder():
    for (_, msgid), msgstr in catalogue().items():
        if msgstr:
            assert sorted(_PLACEHOLDER.findall(msgid)) == sorted(_PLACEHOLDER.findall(msgstr)), \
                msgid
            # Markup in a msgid (<strong>) must survive translation, or the page loses it.
            assert re.findall(r"</?\w+>", msgid) == re.findall(r"</?\w+>", msgstr), msgid


@pytest.mark.parametrize(("tag", "locale"), [
    ("zh-CN", "zh_CN"), ("zh", "zh_CN"), ("zh-Hans-CN", "zh_CN"), ("zh_TW", "zh_CN"),
    ("en-GB", "en"), ("EN", "en"), ("fr-FR", None), ("", None), (None, None),
])
def test_language_tags_map_to_the_two_catalogues(tag, locale):
    assert choose(tag) == locale


class _Text(HTMLParser):
    """The text a reader sees (and attributes a screen reader reads), without tags.

    Text inside an element marked lang="en" is left out: it is English on purpose (a record's
    own words), and says so to the browser and screen readers.
    """

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0
        self._open: list[bool] = []

    def handle_starttag(self, tag, attrs):
        skipped = tag in ("style", "script") or (dict(attrs).get("lang") == "en" and tag != "html")
        if tag not in ("br", "input", "meta", "link", "img", "hr"):
            self._open.append(skipped)
            self._skip += skipped
        for name, value in attrs:
            if name in ("aria-label", "title", "alt") and value and not self._skip:
                self.parts.append(value)

    def handle_endtag(self, tag):
        if tag not in ("br", "input", "meta", "link", "img", "hr") and self._open:
            self._skip -= self._open.pop()

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def english_left(text: str) -> list[str]:
    """Catalogue phrases (two words or more, placeholders cut out) still in English."""
    found = []
    for (_, msgid), _msgstr in catalogue().items():
        for fragment in re.split(r"%\(\w+\)[sd]|<[^>]+>", msgid):
            phrase = fragment.strip(" .,:;()")
            if " " in phrase and len(phrase) >= 8 and phrase in text:
                found.append(phrase)
    return found


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    local = start_local_server()
    try:
        with workspace(local.base_url, tmp_path_factory.mktemp("languages")) as w:
            yield w
    finally:
        local.stop()


@pytest.fixture(autouse=True)
def _no_choice_kept(request: pytest.FixtureRequest) -> None:
    # Each test starts with no language kept for the account (the browser decides).
    if "ws" in request.fixturenames:
        with request.getfixturevalue("ws").accounts.transaction() as db:
            db.execute("DELETE FROM preferences")


def _token(client, path: str = "/login") -> str:
    found = _TOKEN.search(client.get(path).get_data(as_text=True))
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def _sign_in(client, headers=None) -> None:
    answer = client.post("/login", headers=headers, data={
        "username": COORDINATOR[0], "password": COORDINATOR[2], "csrf_token": _token(client)})
    assert answer.status_code == 302


def _choose(client, language: str, next_: str = "/") -> object:
    return client.post("/language", data={
        "language": language, "next": next_, "csrf_token": _token(client, "/login")})


PAGES = ("/", f"/?study={SLE}", "/patients/seed-potential", "/patients/seed-sledai-6",
         "/patients/seed-potential/classification",
         "/patients/seed-potential/sledai", f"/studies/{LN}/log", f"/studies/{SLE}/log",
         "/patients/no-such-patient")


def test_every_page_renders_in_chinese_with_no_english_of_the_catalogue_left(ws):
    client = ws.app.test_client()
    _sign_in(client)
    answer = _choose(client, "zh_CN", "/patients/seed-potential")
    assert answer.status_code == 302 and answer.headers["Location"] == "/patients/seed-potential"
    for path in PAGES:
        page = client.get(path)
        html = page.get_data(as_text=True)
        assert page.status_code in (200, 404), path
        assert '<html lang="zh-CN">' in html, path
        assert english_left(visible_text(html)) == [], path
    worklist = client.get("/").get_data(as_text=True)
    assert "工作列表" in worklist and "潜在候选者" in worklist
    patient = client.get("/patients/seed-potential").get_data(as_text=True)
    assert "不满足" in patient or "满足" in patient
    assert "年" in patient  # dates in the Chinese long form (2026年11月15日)


def test_english_stays_the_default_and_keeps_the_fhir_codes(ws):
    client = ws.app.test_client()
    _sign_in(client)
    html = client.get("/").get_data(as_text=True)
    assert '<html lang="en">' in html and "Worklist" in html and "工作列表" not in html
    assert ">potential-candidate<" in html  # English pages show the codes FHIR has


def test_accept_language_decides_until_the_person_chooses(ws):
    client = ws.app.test_client()
    zh = {"Accept-Language": "fr-FR,zh-CN;q=0.8,en;q=0.5"}
    page = client.get("/login", headers=zh).get_data(as_text=True)
    assert '<html lang="zh-CN">' in page and "用户名" in page
    page = client.get("/login", headers={"Accept-Language": "en-US,zh;q=0.5"})
    assert '<html lang="en">' in page.get_data(as_text=True)
    _choose(client, "en", "/login")
    page = client.get("/login", headers=zh).get_data(as_text=True)
    assert '<html lang="en">' in page  # the choice wins over the browser


def test_the_choice_is_kept_with_the_account_across_sign_ins(ws):
    first = ws.app.test_client()
    _sign_in(first)
    _choose(first, "zh_CN")
    assert ws.accounts.language(COORDINATOR[0]) == "zh_CN"
    other = ws.app.test_client()  # another browser, asking for English
    _sign_in(other, headers={"Accept-Language": "en"})
    page = other.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="zh-CN">' in page


def test_an_unknown_language_or_a_missing_token_changes_nothing(ws):
    client = ws.app.test_client()
    _sign_in(client)
    _choose(client, "en")
    assert _choose(client, "fr").status_code == 400
    answer = client.post("/language", data={"language": "zh_CN", "next": "/"})
    assert answer.status_code == 400
    assert ws.accounts.language(COORDINATOR[0]) == "en"
    assert '<html lang="en">' in client.get("/").get_data(as_text=True)


def test_the_switch_never_redirects_off_site(ws):
    client = ws.app.test_client()
    answer = _choose(client, "zh_CN", "//evil.example/")
    assert answer.status_code == 302 and answer.headers["Location"] == "/"


def test_every_criterion_and_study_of_the_seed_mappings_has_its_chinese_text():
    from service.mappings import load_mappings

    studies = load_mappings(REPO / "mappings").studies
    assert set(studies) == {LN, SLE}
    for study in studies.values():
        assert study.title_zh, study.key
        for crit in study.criteria:
            assert crit.name_zh and crit.text_zh, f"{study.key}: {crit.id}"
            assert re.search(r"[\u4e00-\u9fff]", crit.text_zh), f"{study.key}: {crit.id}"


def test_an_empty_chinese_text_in_a_mapping_is_an_error_naming_file_and_key():
    import tomllib

    from service.mappings import load_mappings
    from service.mappings.errors import MappingError
    from service.mappings.studies import parse_study

    concepts = load_mappings(REPO / "mappings").concepts
    raw = tomllib.loads((REPO / "mappings" / f"{LN}.toml").read_text(encoding="utf-8"))
    raw["criteria"][0]["name_zh"] = " "
    with pytest.raises(MappingError, match=r"pediatric-ln-cart\.toml: criteria\[age\]\.name_zh"):
        parse_study(f"{LN}.toml", raw, concepts)
    raw["criteria"][0]["name_zh"] = "年龄"
    raw["study"]["title_zh"] = 3
    with pytest.raises(MappingError, match=r"study\.title_zh"):
        parse_study(f"{LN}.toml", raw, concepts)


def test_every_reason_of_the_seeds_is_translated_and_english_pages_keep_the_engines_words(ws):
    from service.usecases.subject_rows import criteria_of
    from service.web.pages import reason_text, wording

    reasons = {c.reason for subject in ws.client.search("ResearchSubject", {})
               for c in criteria_of(subject)}
    assert len(reasons) > 100
    with ws.app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        words = wording.reason_words()
        untranslated = []
        for reason in sorted(reasons):
            try:
                shown = reason_text.translate(reason, words)
            except reason_text.Untranslated:
                untranslated.append(reason)
                continue
            assert shown.endswith("。") and re.search(r"[\u4e00-\u9fff]", shown), reason
        assert untranslated == []
    with ws.app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert all(wording.reason(r) == r for r in reasons)


@pytest.mark.parametrize(("english", "chinese"), [
    ("Haemoglobin 59 g/L on 2026-11-04 is below 60 g/L.",
     "血红蛋白 59 g/L（2026年11月4日），低于 60 g/L。"),
    ("Excluded: positive pregnancy test on 2026-11-08.", "排除：2026年11月8日 妊娠试验阳性。"),
    ("CD19+ B cell count 310 /uL on 2026-11-02 is above 0: CD19 is expressed.",
     "CD19+ B 细胞计数 310 /uL（2026年11月2日），高于 0：CD19 表达阳性。"),
    ("No ALT within 90 days (latest 17 U/L on 2026-07-20 is stale).",
     "90 天内无 ALT 结果（最近一次为 2026年7月20日 的 17 U/L，已超出时限）。"),
    ("Excluded: deceased on 2026-10-01.", "排除：已故（2026年10月1日）。"),
    ("Not classified as SLE by the 2019 EULAR/ACR criteria recorded on 2026-11-10: 8 points, "
     "below 10; the laboratory and biopsy items alone reach 4 of the 10 2019 EULAR/ACR points "
     "(entry criterion ANA >= 1:80 met): Low C3 and low C4 4.",
     "按 2026年11月10日 记录的 2019 EULAR/ACR 标准未分类为系统性红斑狼疮：8 分，低于 10 分；"
     "仅实验室和活检条目即达 2019 EULAR/ACR 所需 10 分中的 4 分（准入标准 ANA ≥1:80：满足）："
     "C3 和 C4 均降低 4。"),
    # a name the catalogue does not know (a hospital's own mapping) is kept as written
    ("Glucose 5 mmol/L on 2026-11-04 is at least 3 mmol/L.",
     "Glucose 5 mmol/L（2026年11月4日），不低于 3 mmol/L。"),
    ("Excluded: rituximab taken on 2026-05-19 (MedicationAdministration/ma-284) in the 180 days "
     "before 2026-11-15.",
     "排除：利妥昔单抗 使用于 2026年5月19日（MedicationAdministration/ma-284），在 2026年11月15日 "
     "前 180 天内。"),
    ("No anti-dsDNA or anti-Smith result is recorded.",
     "未记录 抗 dsDNA 抗体或抗 Smith 抗体 结果。"),
    ("Excluded: a person recorded on 2026-11-13 that it is present: Acute flare needing steroids "
     "or plasmapheresis.",
     "排除：已由人工于 2026年11月13日 记录为存在："
     "Acute flare needing steroids or plasmapheresis。"),
    ("Lansky 60 (ECOG equivalent 2) on 2026-11-05 is within 0-2.",
     "Lansky 评分 60 分（相当于 ECOG 2 分，2026年11月5日），在 0-2 范围内。"),
    ("1 of 3 parts are met, 2 needed, and these cannot be decided: SpO2 at least 92%: No SpO2 on "
     "record under the codes searched (LOINC 2708-6).",
     "3 个部分中有 1 个满足，需要 2 个，以下部分无法判定：SpO2 at least 92%：按所检索的编码未找到 "
     "SpO2 记录（LOINC 2708-6）。"),
])
def test_reasons_are_matched_to_their_template_and_filled_in_chinese(english, chinese):
    from service.web.pages import reason_text, wording

    app = _bare_app()
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        assert reason_text.translate(english, wording.reason_words()) == chinese


def test_a_reason_no_template_fits_is_shown_in_english_marked_as_such():
    from service.web.pages import reason_text, wording

    app = _bare_app()
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        with pytest.raises(reason_text.Untranslated):
            reason_text.translate("The moon was full on 2026-11-04.", wording.reason_words())
        shown = str(wording.reason("A <b>new</b> sentence."))
        assert shown == '<span lang="en">A &lt;b&gt;new&lt;/b&gt; sentence.</span>'


def _bare_app():
    from flask import Flask

    from service.web.languages import install_languages

    app = Flask("languages-test")
    install_languages(app)
    return app


def test_every_worksheet_text_of_the_engine_is_in_the_catalogue_list():
    from service.engine import eular_acr, sledai
    from service.web.pages.worksheet_words import WORKSHEET_TEXTS

    texts = {d.label for d in eular_acr.DOMAINS}
    texts |= {t for i in eular_acr.ITEMS for t in (i.label, i.definition)}
    texts |= {t for d in sledai.DESCRIPTORS for t in (d.label, d.definition)}
    assert texts - WORKSHEET_TEXTS == set(), "add them to service/web/pages/worksheet_words.py"


class _TemplateText(HTMLParser):
    """Words a template writes itself (text and read-out attributes), Jinja taken out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.words: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("aria-label", "title", "alt", "placeholder") and value:
                self.words += re.findall(r"[A-Za-z]{2,}", value)

    def handle_data(self, data):
        self.words += re.findall(r"[A-Za-z]{2,}", data)


def test_no_template_writes_a_word_outside_the_catalogue():
    templates = REPO / "service" / "web" / "pages" / "templates"
    found = {}
    for path in sorted(templates.glob("*.html")):
        source = path.read_text(encoding="utf-8")
        # Jinja comments, statements and expressions out (a placeholder keeps tags apart)
        bare = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", " ", source, flags=re.S)
        parser = _TemplateText()
        parser.feed(bare)
        if parser.words:
            found[path.name] = parser.words
    assert found == {}, "wrap these in {{ _('...') }} and run ./dev messages"


def test_the_pages_python_never_flashes_or_aborts_with_a_bare_string():
    import ast

    bare = []
    for path in sorted((REPO / "service" / "web" / "pages").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            args = {"flash": node.args[:1], "abort": node.args[1:2]}.get(node.func.id, [])
            args += [k.value for k in node.keywords if k.arg in ("error", "message", "heading")]
            for arg in args:
                # Strings built here are English: they must come from gettext.
                if isinstance(arg, (ast.Constant, ast.JoinedStr)) and not (
                        isinstance(arg, ast.Constant) and not isinstance(arg.value, str)):
                    bare.append(f"{path.name}:{node.lineno}")
    assert bare == [], "wrap these messages in gettext(...)"


def test_an_email_goes_in_the_language_the_coordinator_chose(tmp_path):
    from email.header import decode_header, make_header

    from service.accounts.store import Accounts
    from service.core.clock import Clock
    from service.usecases.outreach import Outreach
    from service.usecases.smtp_mailer import SmtpMailer
    from tests.support.smtp_server import smtp_server
    from tests.usecases.test_outreach import NAMES, FakeFhir, FakeScreener, Hands

    with smtp_server() as (box, url):
        accounts = Accounts(tmp_path / "users.sqlite")
        for name in ("li", "casey"):
            accounts.add(name, "coordinator", "a long password 12")
            accounts.set_outreach(name, f"{name}@hospital.example", {LN: "immediate"})
        accounts.set_language("li", "zh_CN")
        fhir = FakeFhir()
        outreach = Outreach(FakeScreener(fhir), accounts,
                            SmtpMailer(url, "eligibility@hospital.example"),
                            "https://elig.hospital.example", Clock(Hands()))
        outreach()
        fhir.put(LN, "seed-ln-eligible", "eligible")
        assert outreach()["sent"] == 2
        mails = {m["To"]: m for m in box.messages}
        zh = mails["li@hospital.example"]
        subject = str(make_header(decode_header(zh["Subject"])))  # RFC 2047 encoded words
        assert subject == f"临床试验入组筛选：{LN} 有 1 名新候选者"
        body = zh.get_payload(decode=True).decode()
        assert "CAR-T 治疗儿童难治性/复发性狼疮性肾炎" in body and "符合入组条件：1" in body
        assert f"https://elig.hospital.example/?study={LN}" in body
        assert not [w for w in NAMES if w in body or w in subject]
        en = mails["casey@hospital.example"]
        assert en["Subject"] == f"Trial eligibility: 1 new candidate for {LN}"
        assert "eligible: 1" in en.get_payload(decode=True).decode()


def test_a_refusal_from_below_the_use_cases_shows_in_the_readers_words(ws):
    # Undoing a confirmation twice: the FHIR layer's own sentence ("this confirmation was
    # already undone") never reaches the page; the page says it in the reader's language.
    from service.accounts.form_tokens import new_form_token

    client = ws.app.test_client()
    _sign_in(client)
    pid = "seed-age-4"
    token = _token(client, f"/patients/{pid}")
    assert client.post(f"/patients/{pid}/confirm", data={
        "csrf_token": token, "form_token": new_form_token(), "study": LN,
        "criterion": "venous-access", "answer": "met", "date": "2026-11-14"}).status_code == 302
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    ref = sorted(re.findall(r'name="ref" value="(Observation/[^"]+)"', page))[0]
    assert client.post(f"/patients/{pid}/undo",
                       data={"csrf_token": token, "ref": ref}).status_code == 302
    again = client.post(f"/patients/{pid}/undo", data={"csrf_token": token, "ref": ref})
    shown = visible_text(again.get_data(as_text=True))
    assert again.status_code == 400 and "already undone" not in shown
    assert "This confirmation cannot be undone (it may have been undone already)" in shown
    _choose(client, "zh_CN", f"/patients/{pid}")
    again = client.post(f"/patients/{pid}/undo", data={"csrf_token": token, "ref": ref})
    shown = visible_text(again.get_data(as_text=True))
    assert again.status_code == 400 and "该确认无法撤销" in shown and "undone" not in shown
    # A use case's own refusal is its sentence, translated.
    answer = client.post(f"/patients/{pid}/undo", data={"csrf_token": token, "ref": "Patient/x"})
    assert "这不是一条确认记录。" in visible_text(answer.get_data(as_text=True))


def test_values_show_no_unit_one_and_time_units_in_the_readers_words(ws):
    client = ws.app.test_client()
    _sign_in(client)
    values = re.findall(r"<dd>([^<]*)</dd>",
                        client.get("/patients/seed-potential").get_data(as_text=True))
    assert "10" in values and "10 1" not in values  # the SLEDAI-2K score (UCUM unit 1)
    assert "66%" in values and "10 years" in values and "95 days" in values
    _choose(client, "zh_CN", "/patients/seed-potential")
    values = re.findall(r"<dd>([^<]*)</dd>",
                        client.get("/patients/seed-potential").get_data(as_text=True))
    assert "10 岁" in values and "95 天" in values and "10 years" not in values


def test_a_quantity_shows_as_the_reasons_write_it():
    from service.usecases.subject_rows import with_unit

    assert [with_unit("10", "1"), with_unit("30", "{score}"), with_unit("66", "%"),
            with_unit("5", "10*9/L"), with_unit("7", None)] == ["10", "30", "66%", "5 10*9/L", "7"]
