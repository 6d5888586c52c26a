"""The sentence shapes of the engine's reasons and the terms they name, for the catalogue.

Each template is an English reason shape (no final full stop) and its msgid; TERMS are the record,
medicine and concept names the `what` / `term` placeholders know (every concept of the seed and
example mappings, `tests/web/test_reason_shapes.py` checks). How they are matched and filled:
pages/reason_text.py. A new sentence shape of the engine needs its template here (the shapes test
fails until it has one), `./dev messages` and its Chinese.
"""

from __future__ import annotations

from service.web.pages.reason_text import N_

TEMPLATES = (
    # decide.py: exclusions and who a criterion applies to
    N_("Excluded: %(reason)s"),
    N_("Not excluded: %(reason)s"),
    N_("Not applicable: %(reason)s"),
    N_("the patient is %(term)s"),
    N_("the patient is %(term)s (applies to %(term2)ss only)"),
    N_("the patient is %(years)s years old (applies from %(low)s)"),
    N_("the patient is %(years)s years old (applies up to %(high)s)"),
    # ages
    N_("Age %(years)s years on %(date)s (required: %(range)s)"),
    N_("Age %(years)s years on %(date)s is outside the required %(range)s"),
    N_("%(low)s-%(high)s years"),
    N_("at least %(low)s years"),
    N_("at most %(high)s years"),
    # measurements against a threshold
    N_("%(what)s %(value)s on %(date)s is at least %(limit)s"),
    N_("%(what)s %(value)s on %(date)s is at most %(limit)s"),
    N_("%(what)s %(value)s on %(date)s is above %(limit)s"),
    N_("%(what)s %(value)s on %(date)s is below %(limit)s"),
    N_("%(what)s %(value)s on %(date)s is within %(limit)s"),
    N_("%(what)s %(value)s on %(date)s"),
    N_("Bedside Schwartz eGFR %(value)s (%(factor)s x height %(height)s on %(date)s / "
       "creatinine %(creatinine)s on %(date2)s) is at least %(limit)s"),
    N_("Bedside Schwartz eGFR %(value)s (%(factor)s x height %(height)s on %(date)s / "
       "creatinine %(creatinine)s on %(date2)s) is below %(limit)s"),
    N_("%(reason)s, and bedside Schwartz cannot be computed: %(reason2)s"),
    # multiples of the upper limit of normal
    N_("%(what)s %(value)s on %(date)s = %(ratio)s x ULN (ULN %(uln)s from %(source)s) is at "
       "most %(limit)s x ULN"),
    N_("%(what)s %(value)s on %(date)s = %(ratio)s x ULN (ULN %(uln)s from %(source)s) is "
       "above %(limit)s x ULN"),
    N_("reference range of %(ref)s"),
    N_("CALIPER pediatric table (%(detail)s)"),
    N_("%(what)s, %(term)s, age %(low)s to <%(high)s years: %(value)s"),
    N_("%(reason)s, but %(record)s is recorded: the protocol makes an exception for it, so the "
       "investigator must review"),
    N_("%(reason)s, but %(record)s is recorded (%(ref)s): the protocol makes an exception for "
       "it, so the investigator must review"),
    # missing and stale results
    N_("No %(what)s within %(days)s days (latest %(value)s on %(date)s is stale)"),
    N_("No %(what)s on record under the codes searched (%(codes)s)"),
    N_("No pregnancy test within %(days)s days (latest on %(date)s)"),
    N_("%(what)s: %(reason)s"),
    N_("no result on record"),
    N_("no result in the window"),
    N_("not shown by %(count)s result(s)"),
    N_("not shown by %(count)s result(s) in the window"),
    # SLEDAI-2K
    N_("%(reason)s; lab items alone score %(score)s (results of the last %(days)s days; score "
       "the clinical items with the SLEDAI-2K worksheet)"),
    # diagnoses and the 2019 EULAR/ACR classification
    N_("%(record)s is recorded (%(ref)s)"),
    N_("Only drug-induced lupus is recorded, which does not count as SLE"),
    N_("%(reason)s; no 2019 EULAR/ACR classification is recorded; the laboratory and biopsy "
       "items alone reach %(score)s of the 10 2019 EULAR/ACR points (entry criterion ANA >= "
       "1:80 %(term)s)"),
    N_("%(reason)s; no 2019 EULAR/ACR classification is recorded; the laboratory and biopsy "
       "items alone reach %(score)s of the 10 2019 EULAR/ACR points (entry criterion ANA >= "
       "1:80 %(term)s): %(items)s"),
    N_("no ANA titre of 1:80 or more (latest %(value)s on %(date)s); an ANA result without a "
       "titre is recorded: tick the entry criterion only if that test is equivalent to HEp-2 "
       "at 1:80"),
    N_("the laboratory and biopsy items alone reach %(score)s of the 10 2019 EULAR/ACR points "
       "(entry criterion ANA >= 1:80 %(term)s)"),
    N_("the laboratory and biopsy items alone reach %(score)s of the 10 2019 EULAR/ACR points "
       "(entry criterion ANA >= 1:80 %(term)s): %(items)s"),
    N_("Classified as SLE by the 2019 EULAR/ACR criteria on %(date)s: entry criterion met, "
       "%(total)s points (at least %(threshold)s); %(reason)s"),
    N_("Not classified as SLE by the 2019 EULAR/ACR criteria recorded on %(date)s: "
       "%(reason)s; %(reason2)s"),
    N_("the entry criterion (ANA >= 1:80) is not met"),
    N_("%(total)s points, below %(threshold)s"),
    N_("no clinical item counts (at least one is required)"),
    N_("The 2019 EULAR/ACR classification recorded on %(date)s (%(ref)s) has no readable total "
       "or entry criterion; record it again with the worksheet; %(reason)s"),
    N_("class recorded on %(date)s"),
    N_("no such class recorded"),
    # kidney biopsy and proteinuria
    N_("Class III/IV lupus nephritis with a kidney biopsy on %(date)s, %(days)s days before "
       "screening (limit %(limit)s)"),
    N_("The latest kidney biopsy (%(date)s) is %(days)s days before screening, more than "
       "%(limit)s days"),
    N_("No active class III or IV lupus nephritis is recorded (Condition or pathology "
       "conclusion)"),
    # medicines
    N_("%(count)s of the listed agents taken for more than %(days)s days: %(list)s"),
    N_("Fewer than %(count)s of the listed agents taken for more than %(days)s days (%(list)s)"),
    N_("%(what)s (%(days)s days)"),
    N_("High-dose glucocorticoid for %(days)s days, %(list)s and %(count)s DMARDs "
       "(%(list2)s) are recorded"),
    N_("High-dose glucocorticoid for %(days)s days and %(count)s DMARDs (%(list)s) are "
       "recorded"),
    N_("Intolerant to standard treatment (%(list)s)"),
    N_("The medication history does not show: %(clauses)s"),
    N_("glucocorticoid >= %(dose)s mg/kg/day prednisone-equivalent for >= %(days)s days "
       "(longest high-dose course %(longest)s days)"),
    N_("at least %(count)s DMARDs (found %(found)s: %(list)s)"),
    N_("no intolerance to standard treatment is recorded"),
    N_("No medication history is recorded"),
    N_("No medication history is recorded, so refractoriness cannot be judged"),
    # deceased patients (engine/deceased.py)
    N_("deceased"),
    N_("deceased on %(date)s"),
    N_("deceased (the date of death cannot be read)"),
    # demographics, diagnoses, more results
    N_("No birth date on record, so the age is unknown"),
    N_("The birth date is after the screening date"),
    N_("The sex is not recorded as female or male, so it is unknown whether a pregnancy test is "
       "needed"),
    N_("The latest pregnancy test has no readable result"),
    N_("The latest %(what)s result has no readable titer"),
    N_("ANA reported negative on %(date)s: below %(limit)s"),
    N_("No ANA titer within %(days)s days (latest negative on %(date)s is stale)"),
    N_("ANA reported negative on %(date)s, without the screening dilution; %(limit)s cannot be "
       "judged"),
    N_("ANA titer %(value)s on %(date)s may or may not reach %(limit)s"),
    N_("No %(record)s diagnosis is recorded"),
    N_("%(record)s is recorded"),
    N_("%(record)s is recorded (%(ref)s), but %(reason)s"),
    N_("a person recorded on %(date)s that it is present: %(record)s"),
    N_("a person recorded on %(date)s that it is absent: %(record)s"),
    # confirmations, consent, pregnancy
    N_("Confirmed by a person on %(date)s"),
    N_("Needs a person to confirm: %(text)s. Record it with the confirmation form on the "
       "patient page"),
    N_("No signed informed consent for this study is recorded: %(text)s. Record it with the "
       "confirmation form on the patient page once it is signed"),
    N_("Informed consent for this study is recorded as active (signed %(date)s)"),
    N_("Negative pregnancy test on %(date)s"),
    N_("Positive pregnancy test on %(date)s"),
    # measurements, units, stale and missing results (more shapes)
    N_("%(what)s %(value)s on %(date)s is not above %(limit)s"),
    N_("%(what)s %(value)s on %(date)s is not below %(limit)s"),
    N_("%(what)s %(value)s on %(date)s cannot be compared with %(limit)s"),
    N_("%(what)s %(value)s on %(date)s cannot be read as positive or not"),
    N_("%(what)s %(value)s on %(date)s has no ULN: %(reason)s"),
    N_("%(what)s %(value)s on %(date)s has no upper limit of normal: %(reason)s"),
    N_("%(what)s %(value)s on %(date)s has no lower limit of normal: %(reason)s"),
    N_("no reference range on the result and no age/sex table for it"),
    N_("no reference range on the result and no birth date for the age/sex table"),
    N_("no reference range on the result and the birth date is too partial for the age/sex "
       "table"),
    N_("no reference range on the result and the age/sex table needs the sex"),
    N_("no reference range on the result and the age/sex table has no row for age %(years)s "
       "years"),
    N_("the age/sex table's unit %(unit)s cannot be converted to %(unit2)s"),
    N_("no reference range low on the result and no table of lower limits for it"),
    N_("%(what)s %(value)s on %(date)s = %(ratio)s x ULN (ULN %(uln)s from %(source)s) cannot "
       "be compared with %(limit)s x ULN"),
    N_("%(what)s %(value)s on %(date)s = %(ratio)s x ULN (ULN %(uln)s from %(source)s) cannot "
       "be compared with %(limit)s x ULN (limit for %(record)s)"),
    N_("%(what)s %(value)s on %(date)s = %(ratio)s x ULN (ULN %(uln)s from %(source)s) is at "
       "most %(limit)s x ULN (limit for %(record)s)"),
    N_("%(what)s %(value)s on %(date)s = %(ratio)s x ULN (ULN %(uln)s from %(source)s) is "
       "above %(limit)s x ULN (limit for %(record)s)"),
    N_("%(what)s %(value)s on %(date)s (%(norm)s %(bound)s from %(source)s) is at least "
       "%(normlimit)s"),
    N_("%(what)s %(value)s on %(date)s (%(norm)s %(bound)s from %(source)s) is at most "
       "%(normlimit)s"),
    N_("%(what)s %(value)s on %(date)s (%(norm)s %(bound)s from %(source)s) is above "
       "%(normlimit)s"),
    N_("%(what)s %(value)s on %(date)s (%(norm)s %(bound)s from %(source)s) is below "
       "%(normlimit)s"),
    N_("%(what)s %(value)s on %(date)s (%(norm)s %(bound)s from %(source)s) is not above "
       "%(normlimit)s"),
    N_("%(what)s %(value)s on %(date)s (%(norm)s %(bound)s from %(source)s) is not below "
       "%(normlimit)s"),
    N_("%(what)s %(value)s on %(date)s (%(norm)s %(bound)s from %(source)s) cannot be compared"
       " with %(normlimit)s"),
    N_("%(what)s %(value)s on %(date)s (%(norm)s %(bound)s from %(source)s) is at most "
       "%(normlimit)s (limit for %(record)s)"),
    N_("%(what)s %(value)s on %(date)s (%(norm)s %(bound)s from %(source)s) is above "
       "%(normlimit)s (limit for %(record)s)"),
    N_("%(reason)s, but %(record)s is recorded as text only (%(ref)s), and the protocol makes "
       "an exception for it: the investigator must review"),
    N_("%(reason)s, but %(record)s is recorded as text only (%(ref)s): the protocol makes an "
       "exception for it, so the investigator must review"),
    N_("%(what)s %(value)s on %(date)s was measured within %(days)s days of %(what2)s "
       "(%(ref)s); repeat the count after washout"),
    N_("%(what)s is recorded without a date (%(ref)s), so the %(days)s-day washout before the "
       "count on %(date)s cannot be checked"),
    N_("%(what)s %(value)s on %(date)s is implausible (outside %(low)s-%(high)s)"),
    N_("The unit of %(what)s %(value)s on %(date)s cannot be converted to %(unit)s"),
    N_("No %(what)s on or before %(date)s (%(count)s result(s) after that date ignored)"),
    N_("No dated %(what)s result (%(count)s without a date)"),
    N_("No usable %(what)s value (result without a number)"),
    N_("No %(what)s"),
    N_("No %(what)s within %(days)s days"),
    N_("The %(what)s of %(date)s has no number"),
    N_("%(what)s %(score)s (ECOG equivalent %(value)s) on %(date)s is within 0-%(limit)s"),
    N_("%(what)s %(score)s (ECOG equivalent %(value)s) on %(date)s is above %(limit)s"),
    N_("%(what)s %(total)s on %(date)s is %(value)s without %(list)s, at least %(limit)s"),
    N_("%(what)s %(total)s on %(date)s is %(value)s without %(list)s, at most %(limit)s"),
    N_("%(what)s %(total)s on %(date)s is %(value)s without %(list)s, above %(limit)s"),
    N_("%(what)s %(total)s on %(date)s is %(value)s without %(list)s, below %(limit)s"),
    N_("%(what)s %(total)s on %(date)s is %(value)s without %(list)s, not above %(limit)s"),
    N_("%(what)s %(total)s on %(date)s is %(value)s without %(list)s, not below %(limit)s"),
    N_("%(what)s %(total)s on %(date)s is already at most %(limit)s before %(list)s are taken "
       "off"),
    N_("%(what)s %(total)s on %(date)s is already below %(limit)s before %(list)s are taken "
       "off"),
    N_("%(what)s %(total)s on %(date)s is already not above %(limit)s before %(list)s are "
       "taken off"),
    N_("%(what)s %(total)s on %(date)s does not record the points of %(list)s item by item; "
       "score it on the worksheet or confirm it"),
    N_("%(reason)s; lab items alone score %(score)s: %(items)s (results of the last %(days)s "
       "days; a lower bound: score the clinical items with the SLEDAI-2K worksheet)"),
    N_("Only %(what)s is recorded; a titer is needed to show >= %(limit)s"),
    N_("%(what)s on %(date)s is positive"),
    N_("%(what)s on %(date)s is negative"),
    N_("%(what)s on %(date)s cannot be read as positive or negative"),
    N_("No %(what)s result is recorded"),
    N_("No %(what)s result is recorded in the %(days)s days before %(date)s"),
    N_("No %(what)s result is recorded; the test is required"),
    N_("No %(what)s result is recorded in the %(days)s days before %(date)s; the test is "
       "required"),
    N_("No pregnancy test within %(days)s days under the codes searched (%(codes)s)"),
    N_("%(what)s recorded on %(date)s (%(ref)s)"),
    N_("%(what)s recorded on %(date)s (%(ref)s) in the %(days)s days before %(date2)s"),
    N_("%(what)s recorded (undated) (%(ref)s)"),
    N_("%(what)s recorded (undated) (%(ref)s) in the %(days)s days before %(date)s"),
    N_("%(what)s performed on %(date)s (%(ref)s)"),
    N_("%(what)s performed on %(date)s (%(ref)s) in the %(days)s days before %(date2)s"),
    N_("%(what)s performed (undated) (%(ref)s)"),
    N_("%(what)s performed (undated) (%(ref)s) in the %(days)s days before %(date)s"),
    N_("%(what)s given on %(date)s (%(ref)s)"),
    N_("%(what)s given on %(date)s (%(ref)s) in the %(days)s days before %(date2)s"),
    N_("%(what)s given (undated) (%(ref)s)"),
    N_("%(what)s given (undated) (%(ref)s) in the %(days)s days before %(date)s"),
    N_("%(what)s taken on %(date)s (%(ref)s)"),
    N_("%(what)s taken on %(date)s (%(ref)s) in the %(days)s days before %(date2)s"),
    N_("%(what)s taken (undated) (%(ref)s)"),
    N_("%(what)s taken (undated) (%(ref)s) in the %(days)s days before %(date)s"),
    N_("it is recorded as tentative (provisional, differential or unconfirmed)"),
    N_("its grade is not recorded (grade %(count)s or higher counts)"),
    N_("its date does not show whether it falls in the %(days)s days before %(date)s"),
    N_("its date does not show whether it falls"),
    N_("No %(what)s is recorded"),
    N_("No %(what)s is recorded in the %(days)s days before %(date)s"),
    N_("No %(what)s is recorded in the %(days)s days before %(date)s (the latest, %(ref)s, is "
       "older)"),
    N_("No %(what)s is recorded (the latest, %(ref)s, is older)"),
    N_("%(what)s was given for %(what2)s (%(ref)s)"),
    N_("%(what)s was given for %(what2)s (%(ref)s) in the %(days)s days before %(date)s"),
    N_("A medication was given for %(what)s (%(ref)s)"),
    N_("A medication was given for %(what)s (%(ref)s) in the %(days)s days before %(date)s"),
    N_("A medication for %(what)s is recorded (%(ref)s), but its dates do not show whether it "
       "was taken"),
    N_("A medication for %(what)s is recorded (%(ref)s), but its dates do not show whether it "
       "was taken in the %(days)s days before %(date)s"),
    N_("No medication recorded as given for %(what)s"),
    N_("No medication recorded as given for %(what)s in the %(days)s days before %(date)s"),
    N_("%(record)s is recorded but not active (%(ref)s); only an active diagnosis counts here"),
    N_("%(record)s is recorded, though not marked active (%(ref)s)"),
    N_("Only %(what)s is recorded, which does not count as %(what2)s"),
    N_("%(record)s is recorded as %(term)s (%(ref)s), which does not prove the diagnosis: a "
       "clinician must confirm it"),
    N_("%(record)s is recorded as text only (%(ref)s): it is not missing, but a coded "
       "diagnosis or a person's review is needed"),
    N_("%(record)s is recorded under a code the mappings do not know (%(ref)s): it is not "
       "missing, but a coded diagnosis or a person's review is needed"),
    N_("Class III/IV lupus nephritis is recorded, but no dated kidney biopsy"),
    N_("The most recent lupus nephritis class recorded is %(record)s (%(ref)s), not class III "
       "or IV"),
    N_("The most recent lupus nephritis class recorded is %(record)s (%(ref)s), not class III "
       "or IV (an older required class is superseded by it)"),
    N_("Lupus nephritis is recorded (%(ref)s) with a kidney biopsy on %(date)s, but the class "
       "is not recorded (class III or IV is required)"),
    N_("%(what)s at >= %(dose)s %(unit)s for %(days)s days"),
    N_("%(what)s at >= %(dose)s %(unit)s for %(days)s days in the %(days2)s days before "
       "%(date)s"),
    N_("No course of %(what)s at >= %(dose)s %(unit)s for %(days)s days: the longest such "
       "course is %(longest)s days, %(need)s needed"),
    N_("No course of %(what)s at >= %(dose)s %(unit)s for %(days)s days in the %(days2)s days "
       "before %(date)s: the longest such course is %(longest)s days, %(need)s needed"),
    N_("Medication history is partial (%(gaps)s); the longest such course is %(longest)s days,"
       " %(need)s needed"),
    N_("Medication history is partial (%(gaps)s); not shown: %(clauses)s"),
    N_("dose of %(ref)s unknown"),
    N_("no prednisone equivalent for %(ref)s"),
    N_("no body weight to convert between mg and mg/kg"),
    N_("dose range of %(ref)s (%(low)s-%(high)s %(unit)s) spans %(dose)s %(unit2)s"),
    N_("dose range of %(ref)s spans %(dose)s mg/kg/day"),
    N_("period of %(ref)s unknown"),
    N_("no body weight for mg/kg/day"),
    N_("duration of %(list)s not recorded"),
    N_("No medication history is recorded, so the dose of %(what)s cannot be judged"),
    N_("%(amount)s mg of %(what)s given in the %(days)s days before %(date)s (%(count)s "
       "administration(s)), at least %(limit)s mg"),
    N_("%(amount)s mg of %(what)s given in the %(days)s days before %(date)s (%(count)s "
       "administration(s)), below %(limit)s mg"),
    N_("%(amount)s mg of %(what)s given in the %(days)s days before %(date)s (%(count)s "
       "administration(s)); the dose of %(refs)s is not recorded"),
    N_("%(amount)s mg of %(what)s given in the %(days)s days before %(date)s (%(count)s "
       "administration(s)); %(what2)s is ordered or recorded as taken (%(ref)s) but its "
       "administrations are not recorded"),
    N_("Only %(count)s of the listed agents shown for more than %(days)s days; the duration of"
       " %(list)s is not recorded"),
    N_("at least %(count)s DMARDs (found %(found)s)"),
    N_("The birth date is partial (%(ref)s): age is %(low)s or %(high)s years, which may or "
       "may not be within %(range)s"),
    N_("The patient is %(status)s in %(ref)s (%(ref2)s)"),
    N_("No ResearchSubject of this patient in another study has status %(statuses)s"),
    N_("the patient is over %(years)s, the pediatric formula does not apply"),
    N_("creatinine %(value)s is not an exact positive value"),
    N_("no body height within %(days)s days of the creatinine on %(date)s"),
    N_("The confirmation of %(date)s is older than %(days)s days; a person must confirm it "
       "again. Record it with the confirmation form on the patient page"),
    N_("A person recorded on %(date)s that it is not met"),
    N_("Needs a person to confirm for this study: %(text)s. Record it with the confirmation "
       "form on the patient page"),
    N_("The ECG of %(date)s is coded abnormal"),
    N_("The ECG of %(date)s is coded normal"),
    N_("Informed consent for this study is recorded as active"),
    N_("A research consent naming no particular study is active (signed %(date)s); check that "
       "it covers this study"),
    N_("A research consent naming no particular study is active; check that it covers this "
       "study"),
    N_("The latest consent for this study is %(status)s; an active, signed consent is needed. "
       "Record it with the confirmation form on the patient page once it is signed"),
    N_("The latest consent for this study is without a status; an active, signed consent is "
       "needed. Record it with the confirmation form on the patient page once it is signed"),
    N_("The record's data for this criterion is malformed and could not be read; review it by "
       "hand"),
    N_("Met by %(parts)s"),
    N_("Not met because of %(parts)s"),
    N_("No part is met yet, and these cannot be decided: %(parts)s"),
    N_("None of the parts is met: %(parts)s"),
    N_("Not every part can be decided: %(parts)s"),
    N_("Every part is met: %(parts)s"),
    N_("%(count)s of %(total)s parts are met (at least %(need)s needed): %(parts)s"),
    N_("%(count)s of %(total)s parts are met, %(need)s needed, and these cannot be decided: "
       "%(parts)s"),
    N_("Only %(count)s of %(total)s parts can be met (at least %(need)s needed): %(parts)s"),
    N_("Holds: %(parts)s"),
    N_("Does not hold: %(parts)s"),
    N_("Cannot be decided: %(parts)s"),
    # the worksheets' lab findings (engine/sledai_labs.py, eular_acr_labs.py)
    N_("%(what)s positive on %(date)s"),
    N_("%(what)s negative on %(date)s"),
    N_("%(what)s flagged low on %(date)s"),
    N_("%(what)s flagged high on %(date)s"),
    N_("%(what)s %(value)s flagged by the laboratory on %(date)s"),
    N_("%(what)s %(value)s (lower limit %(limit)s) on %(date)s"),
    N_("%(what)s %(value)s (upper limit %(limit)s) on %(date)s"),
    N_("class recorded"),
    N_("no ANA titre on record"),
    N_("no ANA titre of 1:80 or more (latest %(value)s on %(date)s)"),
    N_("no ANA titre of 1:80 or more (latest unreadable on %(date)s)"),
    N_("no ANA titre of 1:80 or more (latest the text %(quoted)s on %(date)s)"),
    N_("an ANA result without a titre is recorded: tick the entry criterion only if that test "
       "is equivalent to HEp-2 at 1:80"),
)

# Record and medicine terms the templates' `what` and `term` placeholders accept.
TERMS = (
    N_("ALT"), N_("AST"), N_("ALT (no P5P)"), N_("AST (no P5P)"), N_("INR"), N_("PT"),
    N_("WBC"), N_("LVEF"), N_("SpO2"), N_("ECOG"), N_("ECOG score"), N_("eGFR"), N_("C3"),
    N_("C4"), N_("Reported eGFR"), N_("ANA titer"), N_("ANA titre"), N_("SLEDAI-2K score"),
    N_("Haemoglobin"), N_("haemoglobin"), N_("Total bilirubin"), N_("total bilirubin"),
    N_("Lymphocytes"), N_("lymphocytes"), N_("Neutrophils"), N_("neutrophils"),
    N_("creatinine"), N_("Urine protein/creatinine ratio"), N_("urine protein/creatinine ratio"),
    N_("24 h urine protein"), N_("CD19+ B cell percentage"), N_("CD19+ B cell count"),
    N_("male"), N_("female"), N_("both sexes"), N_("met"), N_("not shown"),
    N_("glucocorticoids"), N_("mycophenolic acid analogues"), N_("tacrolimus"),
    N_("cyclosporine"), N_("leflunomide"), N_("cyclophosphamide"), N_("azathioprine"),
    N_("mycophenolate"), N_("methotrexate"), N_("hydroxychloroquine"),
    # concept names the engine writes in its own words (a record's own words stay as written)
    N_("lupus nephritis"), N_("systemic lupus erythematosus"), N_("SLE"),
    N_("drug-induced lupus"),
    # the study files' `wording` phrases (what a result means for a criterion)
    N_("CD19 is expressed"), N_("proteinuria persists"),
    # concept names of the seed and example mappings, and words the rules use
    N_("provisional"),
    N_("differential"),
    N_("unconfirmed"),
    N_("A matching diagnosis"),
    N_("none of the listed agents"),
    N_("the test is required"),
    N_("calcineurin inhibitor"),
    N_("prednisone"),
    N_("prednisolone"),
    N_("methylprednisolone"),
    N_("dexamethasone"),
    N_("hydrocortisone"),
    N_("mycophenolate mofetil"),
    N_("mycophenolic acid"),
    N_("anifrolumab"),
    N_("belimumab"),
    N_("telitacicept"),
    N_("rituximab"),
    N_("obinutuzumab"),
    N_("sirolimus"),
    N_("voclosporin"),
    N_("filgrastim"),
    N_("G-CSF"),
    N_("renal response"),
    N_("no CD19+ B cells"),
    N_("Gilbert syndrome"),
    N_("an ANA presence result"),
    N_("anti-dsDNA"),
    N_("anti-Smith"),
    N_("anti-beta2-glycoprotein 1 IgG"),
    N_("anticardiolipin IgG"),
    N_("lupus anticoagulant"),
    N_("direct antiglobulin (Coombs) test"),
    N_("body height"),
    N_("body temperature"),
    N_("body weight"),
    N_("CAR-T cell infusion"),
    N_("CTCAE grade"),
    N_("HBsAg"),
    N_("HCV RNA"),
    N_("HIV infection"),
    N_("HIV screening test"),
    N_("hCG test"),
    N_("haematopoietic stem cell transplant"),
    N_("hepatitis B or C infection"),
    N_("laboratory panel"),
    N_("lupus nephritis class I or VI"),
    N_("lupus nephritis class II"),
    N_("myositis"),
    N_("non-malignant CNS disease"),
    N_("organ transplant"),
    N_("platelets"),
    N_("thromboembolic event"),
    N_("urinary casts"),
    N_("urine red blood cells"),
    N_("urine white blood cells"),
    N_("2019 EULAR/ACR classification"),
    N_("karnofsky"),
    N_("lansky"),
    N_("kidney biopsy"),
    N_("ecg abnormal"),
    N_("ecg normal"),
    N_("ecg interpretation"),
    N_("manual confirmation"),
    N_("ln class iii iv"),
    N_("ln class v"),
    N_("organ allograft"),
    N_("organ transplant procedure"),
    N_("stem cell transplant"),
    N_("stem cell transplant procedure"),
    N_("result panels"),
)

# Phrases the matcher writes itself (pages/reason_text.py).
PART = N_("%(text)s: %(reason)s")  # one part of a combination and its reason
CODE = N_("Code %(code)s")  # a diagnosis recorded under a code without a display
OR = N_(" or ")  # names the engine joins ("anti-dsDNA or anti-Smith")

# Shapes so general that a name the catalogue does not know must not fill them.
STRICT_ONLY = frozenset({N_("No %(what)s")})
