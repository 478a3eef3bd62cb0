/*
 * fixture_structure.h - the small self-contained SDMX structure fixture the
 * tests map and validate against, shared by the cmocka unit tests (through
 * test_support.h: test_validate.c, test_sdmx_rows.c, test_hub_prep.c) and
 * the fuzz targets (fuzz_sdmx_rows.c), so there is one copy of it. Plain C,
 * no cmocka: a fuzz target builds without it. Header-only and static, so
 * each file gets its own copy; not for production code. The include path
 * (tests/support) comes from cmake/obsync_test.cmake.
 */
#ifndef OBSYNC_FIXTURE_STRUCTURE_H
#define OBSYNC_FIXTURE_STRUCTURE_H

#include <stdio.h>
#include <string.h>

#include "issue.h"
#include "obs_err.h"
#include "structure.h"

/* The dataflows of the fixture. */
#define VIOL      "OID:DF_VIOLENCE(1.0)"
#define DRUG      "OID:DF_DRUG_USE(1.0)"
#define DRUG_WARN "OID:DF_DRUG_WARN(1.0)"

/* The structure fixture text (static storage): two DSDs (violence, drug
 * use), three dataflows OID:DF_VIOLENCE(1.0), OID:DF_DRUG_USE(1.0) (both
 * semantic=reject) and OID:DF_DRUG_WARN(1.0) (semantic=warn), and two
 * agreements (COL for its own area only, OID for all areas). */
static inline const char *
test_fixture_text(void)
{
    return "codelist OID:CL_FREQ(1.0) \"Frequency\"\n"
           "  code A \"Annual\"\n"
           "  code Q \"Quarterly\"\n"
           "end\n"
           "codelist OID:CL_AREA(1.0) \"Areas\"\n"
           "  code ALB \"Albania\"\n"
           "  code COL \"Colombia\"\n"
           "  code HKG \"Hong Kong\"\n"
           "  code ISR \"Israel\"\n"
           "  code LAC \"Latin America and the Caribbean\"\n"
           "  code LVA \"Latvia\"\n"
           "  code MEX \"Mexico\"\n"
           "  code USA \"United States\"\n"
           "end\n"
           "codelist OID:CL_SEX(1.0) \"Sex\"\n"
           "  code _T \"Total\"\n"
           "  code F \"Female\"\n"
           "  code M \"Male\"\n"
           "end\n"
           "codelist OID:CL_IND(1.0) \"Indicators\"\n"
           "  code VC_IHR_PSRC \"Victims rate\"\n"
           "  code VC_IHR_PSRCN \"Victims count\"\n"
           "  code PREV_PY \"Past-year prevalence\"\n"
           "  code PREV_PM \"Past-month prevalence\"\n"
           "  code AGE_FIRST_USE \"Age of first use\"\n"
           "end\n"
           "codelist OID:CL_SUBSTANCE(1.0) \"Substances\"\n"
           "  code CANNABIS \"Cannabis\"\n"
           "  code OPIATES \"Opiates\"\n"
           "  code OPIOIDS \"Opioids\"\n"
           "end\n"
           "codelist OID:CL_UNIT_MEASURE(1.0) \"Units\"\n"
           "  code PT \"Percent\"\n"
           "  code PER_100000_POP \"Per 100,000 population\"\n"
           "  code NUMBER \"Number\"\n"
           "  code YR \"Years\"\n"
           "end\n"
           "codelist OID:CL_OBS_STATUS(1.0) \"Observation status\"\n"
           "  code A \"Normal value\"\n"
           "  code E \"Estimated value\"\n"
           "  code L \"Missing; not collected\"\n"
           "  code LT \"Less than\"\n"
           "  code M \"Missing; cannot exist\"\n"
           "  code O \"Missing value\"\n"
           "  code P \"Provisional value\"\n"
           "  code Q \"Missing; suppressed\"\n"
           "end\n"
           "dsd OID:DSD_VIOLENCE(1.0) \"Violence\"\n"
           "  dimension FREQ codelist=OID:CL_FREQ(1.0)\n"
           "  dimension REF_AREA codelist=OID:CL_AREA(1.0)\n"
           "  dimension INDICATOR codelist=OID:CL_IND(1.0)\n"
           "  dimension SEX codelist=OID:CL_SEX(1.0)\n"
           "  attribute UNIT_MEASURE codelist=OID:CL_UNIT_MEASURE(1.0) "
           "attach=series mandatory=yes\n"
           "  attribute OBS_STATUS codelist=OID:CL_OBS_STATUS(1.0) attach=obs\n"
           "  attribute LOWER_BOUND type=decimal attach=obs\n"
           "  attribute UPPER_BOUND type=decimal attach=obs\n"
           "  attribute COMMENT_OBS type=string max=20 attach=obs\n"
           "  attribute DECIMALS type=integer attach=obs\n"
           "  attribute EMBARGO_DATE type=date attach=dataset\n"
           "end\n"
           "dsd OID:DSD_DRUG_USE(1.0) \"Drug use\"\n"
           "  dimension FREQ codelist=OID:CL_FREQ(1.0)\n"
           "  dimension REF_AREA codelist=OID:CL_AREA(1.0)\n"
           "  dimension INDICATOR codelist=OID:CL_IND(1.0)\n"
           "  dimension SUBSTANCE codelist=OID:CL_SUBSTANCE(1.0)\n"
           "  dimension SEX codelist=OID:CL_SEX(1.0)\n"
           "  attribute UNIT_MEASURE codelist=OID:CL_UNIT_MEASURE(1.0) "
           "attach=series mandatory=yes\n"
           "  attribute OBS_STATUS codelist=OID:CL_OBS_STATUS(1.0) attach=obs\n"
           "  attribute LOWER_BOUND type=decimal attach=obs\n"
           "  attribute UPPER_BOUND type=decimal attach=obs\n"
           "end\n"
           "dataflow OID:DF_VIOLENCE(1.0) dsd=OID:DSD_VIOLENCE(1.0) "
           "semantic=reject \"Violence\"\n"
           "dataflow OID:DF_DRUG_USE(1.0) dsd=OID:DSD_DRUG_USE(1.0) "
           "semantic=reject \"Drug use\"\n"
           "dataflow OID:DF_DRUG_WARN(1.0) dsd=OID:DSD_DRUG_USE(1.0) "
           "semantic=warn \"Drug use, semantic rules as warnings\"\n"
           "agreement provider=COL dataflow=OID:DF_VIOLENCE(1.0) areas=COL\n"
           "agreement provider=OID dataflow=OID:DF_VIOLENCE(1.0) areas=*\n";
}

/* Loads test_fixture_text() into a new structure *out (caller-owned: free
 * with structure_destroy). Prints every issue and the error to stderr.
 * Returns 0, -1 on allocation failure, or structure_load_text's OBS_E*
 * (*out is then still set, for the caller to destroy). */
static inline int
test_load_fixture(structure_t **out)
{
    const char *text = test_fixture_text();
    issue_list_t issues;
    issue_list_init(&issues, 0);
    *out = structure_new();
    if (*out == NULL)
        return -1;
    int rc =
        structure_load_text(*out, text, strlen(text), "fixture", &issues, NULL);
    for (size_t i = 0; i < issues.n; i++)
        fprintf(stderr, "fixture:%llu: %s\n",
                (unsigned long long)issues.items[i].line,
                issues.items[i].message);
    if (rc != 0)
        fprintf(stderr, "fixture: %s\n", obs_strerror(rc));
    issue_list_fini(&issues);
    return rc;
}

#endif /* OBSYNC_FIXTURE_STRUCTURE_H */
