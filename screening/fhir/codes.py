"""Code systems and the small code tables the FHIR mapping reads.

Every code here was checked against a published source, named beside it. Where no standard
code could be verified (ascites grade, West Haven grade, child-bearing potential, the
prothrombin-time control, endoscopy/biopsy/elastography modalities, procedure kinds such as
TIPS), the mapping reads this project's own code system :data:`PROJECT`, whose codes are the
engine's own names (``ascites_grade``, ``tips``...). See ``patients/fhir/README.md``.
"""

from __future__ import annotations

from ..patient.model import AssessmentName, ConsentStatus, MedicationStatus, Modality, QualitativeResult

# -- code systems (FHIR R4 "Using Codes", terminology.hl7.org) -------------------------------------
PROJECT = "https://github.com/trial-screening/codes"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10_PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
CPT = "http://www.ama-assn.org/go/cpt"
ATC = "http://www.whocc.no/atc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"  # diagnostic service section
V2_0136 = "http://terminology.hl7.org/CodeSystem/v2-0136"  # yes/no
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
LIST_EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
LIST_USE = "http://terminology.hl7.org/CodeSystem/list-example-use-codes"
IPS_ABSENT = "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips"

ICD10_SYSTEMS = frozenset({ICD10, ICD10_CM})

# -- histories ---------------------------------------------------------------------------------------
HISTORY_CONDITIONS = "conditions"
HISTORY_MEDICATIONS = "medications"
HISTORY_PROCEDURES = "procedures"

# List.code -> the history it is (LOINC document section codes, FHIR ValueSet doc-section-codes:
# 11450-4 problem list, 10160-0 history of medication use, 47519-4 history of procedures; and
# terminology.hl7.org CodeSystem list-example-use-codes: problems, medications).
LIST_HISTORY: dict[tuple[str, str], str] = {
    (LOINC, "11450-4"): HISTORY_CONDITIONS,
    (LOINC, "10160-0"): HISTORY_MEDICATIONS,
    (LOINC, "47519-4"): HISTORY_PROCEDURES,
    (LIST_USE, "problems"): HISTORY_CONDITIONS,
    (LIST_USE, "medications"): HISTORY_MEDICATIONS,
}

# International Patient Summary "absent and unknown" codes (IPS CodeSystem absent-unknown-uv-ips):
# a no-known-* record says the history was reviewed and is empty; a no-*-info record says it was not.
IPS_NONE_KNOWN = {"no-known-problems": HISTORY_CONDITIONS, "no-known-medications": HISTORY_MEDICATIONS,
                  "no-known-procedures": HISTORY_PROCEDURES}
IPS_NO_INFO = {"no-problem-info": HISTORY_CONDITIONS, "no-medication-info": HISTORY_MEDICATIONS,
               "no-procedure-info": HISTORY_PROCEDURES}

# -- observations ------------------------------------------------------------------------------------
LOINC_PREGNANCY_STATUS = "82810-3"  # Pregnancy status (IPS ValueSet pregnancy-status-uv-ips)
LOINC_BREASTFEEDING_STATUS = "63895-7"  # Breastfeeding status (used by IHE/ISiK/WHO SMART guides)

# Answers -> True (pregnant / breastfeeding), False, or None (recorded as unknown).
PREGNANCY_ANSWERS: dict[tuple[str, str], bool | None] = {
    (LOINC, "LA15173-0"): True,  # Pregnant (IPS pregnancy-status-uv-ips)
    (LOINC, "LA26683-5"): False,  # Not pregnant
    (LOINC, "LA4489-6"): None,  # Unknown
    (SNOMED, "77386006"): True,  # Pregnant (IPS ConceptMap LOINC -> SNOMED CT)
    (SNOMED, "60001007"): False,  # Not pregnant
}
BREASTFEEDING_ANSWERS: dict[tuple[str, str], bool | None] = {
    (LOINC, "LA29252-6"): True,  # Currently breastfeeding (LOINC answer list of 63895-7)
    (LOINC, "LA29253-4"): False,  # Not currently breastfeeding
}
YES_NO: dict[tuple[str, str], bool] = {(V2_0136, "Y"): True, (V2_0136, "N"): False}

# Project codes on Observation.code, and what they fill.
PROJECT_ASSESSMENTS = {AssessmentName.ASCITES_GRADE.value: AssessmentName.ASCITES_GRADE,
                       AssessmentName.ENCEPHALOPATHY_GRADE.value: AssessmentName.ENCEPHALOPATHY_GRADE}
PROJECT_CHILDBEARING_POTENTIAL = "childbearing_potential"
PROJECT_PT_CONTROL = "prothrombin_time_control"  # Observation.component on a prothrombin time

# Qualitative results: SNOMED CT qualifier values (HL7 COVID-19 library value sets
# detected-not-detected and reactive-non-reactive; WHO DDCC lab-test-qual-result-snomed),
# LOINC answers (LL2021-5 positive/negative, LL744-4 detected/not detected), and the
# v3 ObservationInterpretation codes (read from Observation.interpretation when the value is a number).
QUALITATIVE_CODES: dict[tuple[str, str], QualitativeResult] = {
    (SNOMED, "10828004"): QualitativeResult.POSITIVE,
    (SNOMED, "260385009"): QualitativeResult.NEGATIVE,
    (SNOMED, "260373001"): QualitativeResult.DETECTED,
    (SNOMED, "260415000"): QualitativeResult.NOT_DETECTED,
    (SNOMED, "11214006"): QualitativeResult.REACTIVE,
    (SNOMED, "131194007"): QualitativeResult.NONREACTIVE,
    (SNOMED, "82334004"): QualitativeResult.INDETERMINATE,
    (SNOMED, "419984006"): QualitativeResult.INDETERMINATE,  # Inconclusive
    (LOINC, "LA6576-8"): QualitativeResult.POSITIVE,
    (LOINC, "LA6577-6"): QualitativeResult.NEGATIVE,
    (LOINC, "LA11882-0"): QualitativeResult.DETECTED,
    (LOINC, "LA11883-8"): QualitativeResult.NOT_DETECTED,
    (LOINC, "LA11884-6"): QualitativeResult.INDETERMINATE,
    (LOINC, "LA9663-1"): QualitativeResult.INDETERMINATE,  # Inconclusive
}
INTERPRETATION_CODES: dict[tuple[str, str], QualitativeResult] = {
    (V3_INTERPRETATION, "POS"): QualitativeResult.POSITIVE,
    (V3_INTERPRETATION, "NEG"): QualitativeResult.NEGATIVE,
    (V3_INTERPRETATION, "DET"): QualitativeResult.DETECTED,
    (V3_INTERPRETATION, "ND"): QualitativeResult.NOT_DETECTED,
    (V3_INTERPRETATION, "IND"): QualitativeResult.INDETERMINATE,
}
# Free text (valueString, CodeableConcept.text), lower-cased with spaces, '-' and '_' removed.
# English, Indonesian (positif/negatif/reaktif) and Chinese (阳性/阴性), the sites' languages.
QUALITATIVE_TEXT: dict[str, QualitativeResult] = {
    "positive": QualitativeResult.POSITIVE, "pos": QualitativeResult.POSITIVE, "positif": QualitativeResult.POSITIVE,
    "阳性": QualitativeResult.POSITIVE,
    "negative": QualitativeResult.NEGATIVE, "neg": QualitativeResult.NEGATIVE, "negatif": QualitativeResult.NEGATIVE,
    "阴性": QualitativeResult.NEGATIVE,
    "detected": QualitativeResult.DETECTED, "terdeteksi": QualitativeResult.DETECTED,
    "notdetected": QualitativeResult.NOT_DETECTED, "undetected": QualitativeResult.NOT_DETECTED,
    "tidakterdeteksi": QualitativeResult.NOT_DETECTED,
    "reactive": QualitativeResult.REACTIVE, "reaktif": QualitativeResult.REACTIVE,
    "nonreactive": QualitativeResult.NONREACTIVE, "nonreaktif": QualitativeResult.NONREACTIVE,
    "indeterminate": QualitativeResult.INDETERMINATE, "inconclusive": QualitativeResult.INDETERMINATE,
    "equivocal": QualitativeResult.INDETERMINATE,
}

QUANTITY_COMPARATORS = {"<", "<=", ">", ">="}  # FHIR R4B also has "ad" (sufficient to achieve): not mapped

# -- procedures --------------------------------------------------------------------------------------
PROCEDURE_SYSTEMS = {SNOMED: "snomed", ICD10_PCS: "icd10pcs", CPT: "cpt"}  # in order of preference

# SNOMED CT procedure -> the engine's procedure kind. Codes are those of the project's own code lists
# (rules/codelists/organ_transplant_procedure.yaml, dialysis.yaml, stem_cell_therapy.yaml), which cite
# SNOMED CT International and NLM VSAC. A code not listed still maps (code + system), without a kind;
# a regime (711446003 transplantation of kidney regime: daily care after it) has no kind, as it is
# not the operation (tests/test_fhir.py checks every procedure of those lists has a kind here).
PROCEDURE_KINDS: dict[str, str] = {
    "18027006": "liver_transplant",  # Transplantation of liver
    "70536003": "kidney_transplant",  # Transplant of kidney
    "175901007": "kidney_transplant",  # Live donor renal transplant
    "175902000": "kidney_transplant",  # Cadaveric renal transplant
    "711411006": "kidney_transplant",  # Allotransplantation of kidney from beating heart cadaver
    "711413009": "kidney_transplant",  # Allotransplantation of kidney from non-beating heart cadaver
    "765478004": "kidney_transplant",  # Allotransplantation of left kidney
    "765479007": "kidney_transplant",  # Allotransplantation of right kidney
    "782655004": "kidney_transplant",  # Laparoscopic transplant of kidney using robotic assistance
    "52213001": "kidney_transplant",  # Renal homotransplantation excluding donor and recipient nephrectomy
    "6471000179103": "organ_transplant",  # Transplantation of kidney and pancreas
    "32413006": "heart_transplant",  # Transplantation of heart
    "88039007": "lung_transplant",  # Transplant of lung
    "313039003": "organ_transplant",  # Solid organ transplant
    "302497006": "haemodialysis",  # Hemodialysis
    "233575001": "haemodialysis",  # Intermittent hemodialysis
    "265764009": "dialysis",  # Renal dialysis
    "108241001": "dialysis",  # Dialysis procedure
    "71192002": "peritoneal_dialysis",  # Peritoneal dialysis
    "234336002": "stem_cell_transplant",  # Hemopoietic stem cell transplant
    "23719005": "bone_marrow_transplant",  # Transplantation of bone marrow
}

# -- medications -------------------------------------------------------------------------------------
MEDICATION_STATEMENT_STATUS: dict[str, MedicationStatus | None] = {
    "active": MedicationStatus.ACTIVE, "completed": MedicationStatus.COMPLETED, "stopped": MedicationStatus.STOPPED,
    "on-hold": MedicationStatus.ON_HOLD, "intended": MedicationStatus.INTENDED,
    "not-taken": None, "entered-in-error": None,
}
MEDICATION_REQUEST_STATUS: dict[str, MedicationStatus | None] = {
    "active": MedicationStatus.ACTIVE, "completed": MedicationStatus.COMPLETED, "stopped": MedicationStatus.STOPPED,
    "on-hold": MedicationStatus.ON_HOLD, "draft": MedicationStatus.INTENDED,
    "cancelled": None, "entered-in-error": None,
}
MEDICATION_REQUEST_PLANNED_INTENTS = frozenset({"proposal", "plan", "option"})  # not (yet) an order

# -- imaging -----------------------------------------------------------------------------------------
# DICOM modality (DCM, CID 29) -> the engine's modality.
DICOM_MODALITIES = {"US": Modality.ULTRASOUND, "CT": Modality.CT, "MR": Modality.MRI}
# v2-0074 diagnostic service sections that name a modality.
V2_SECTION_MODALITIES = {"RUS": Modality.ULTRASOUND, "VUS": Modality.ULTRASOUND, "OUS": Modality.ULTRASOUND,
                         "CT": Modality.CT, "NMR": Modality.MRI}
V2_LAB_SECTIONS = frozenset({"LAB", "CH", "HM", "CP", "SR", "MB", "IMM", "SP", "BLB", "CG", "HLA", "TX", "VR"})

# SNOMED CT conclusion codes -> the engine's imaging findings. Cirrhosis, ascites and HCC codes are
# those of the project's code lists (liver_cirrhosis, ascites, hepatocellular_carcinoma); splenomegaly
# 16294009 and oesophageal varices 28670008 are SNOMED CT International disorders.
IMAGING_FINDINGS: dict[str, str] = {
    "19943007": "cirrhosis",  # Cirrhosis of liver
    "716203000": "cirrhosis",  # Decompensated cirrhosis of liver
    "123717006": "cirrhosis",  # Advanced cirrhosis
    "266468003": "cirrhosis",  # Cirrhosis - non-alcoholic
    "420054005": "cirrhosis",  # Alcoholic cirrhosis
    "389026000": "ascites",  # Ascites
    "16294009": "splenomegaly",  # Splenomegaly
    "28670008": "varices",  # Esophageal varices
    "109841003": "hepatocellular_carcinoma",  # Liver cell carcinoma
    "253018005": "hepatocellular_carcinoma",  # Fibrolamellar hepatocellular carcinoma
}
NO_ABNORMALITY = "281900007"  # No abnormality detected (finding): a study with no findings

# -- consent -----------------------------------------------------------------------------------------
CONSENT_STATUS: dict[str, ConsentStatus | None] = {
    "active": ConsentStatus.CONSENTED,  # unless provision.type is "deny": then refused
    "rejected": ConsentStatus.REFUSED,
    "proposed": ConsentStatus.NOT_ASKED,  # asked, no decision yet: not a refusal
    "draft": ConsentStatus.NOT_ASKED,
    "inactive": None,  # no longer in force: the current state is not known
    "entered-in-error": None,
}
