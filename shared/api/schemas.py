"""JSON Schemas (2020-12) of the API's bodies: the ``components.schemas`` of the
OpenAPI document. The request schemas are also what the API validates with
(:mod:`shared.api.validation`); the response schemas are what the tests check
every answer against.

Hyperparameter ranges follow Azure OpenAI's limits as published and as the
simulator enforces them (n_epochs 1-50, batch_size 1-256, learning_rate_multiplier
above 0 and at most 10).
"""
from __future__ import annotations

from typing import Any

from ..adapters.openai_jobs import TRAINING_TYPES
from ..machines.dataset import DATASET
from ..machines.deployment import DEPLOYMENT
from ..machines.job import JOB

SUFFIX_PATTERN = r"^[A-Za-z0-9_-]{1,40}$"
DEPLOYMENT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$"
JOB_ID_PATTERN = r"^(job-[0-9]{13}[0-9a-f]{8}|ftjob-[A-Za-z0-9_-]{1,64})$"
SKUS = ["Standard", "GlobalStandard", "DeveloperTier", "ProvisionedManaged"]
KEEP_ALIVE = ["redeploy", "ping", "none"]
# Every status the API shows comes from the life cycles' tables.
JOB_STATUSES = JOB.values()
DATASET_STATUSES = DATASET.values()
DEPLOYMENT_STATES = DEPLOYMENT.values()

_STR_OR_NULL = {"type": ["string", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}
_NUM_OR_NULL = {"type": ["number", "null"]}
_TIME = {"type": ["string", "null"], "description": "UTC time, ISO 8601"}
_LAST_ERROR = {"type": ["object", "null"], "description": "The last transient error a stage recorded",
               "properties": {"message": {"type": ["string", "null"]}, "kind": {"type": ["string", "null"]},
                              "at": {"type": ["string", "null"]}}}


def _auto(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"const": "auto"}]}


HYPERPARAMETERS_REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "description": "Left out or \"auto\": the service chooses from the training data.",
    "properties": {
        "n_epochs": _auto({"type": "integer", "minimum": 1, "maximum": 50}),
        "batch_size": _auto({"type": "integer", "minimum": 1, "maximum": 256}),
        "learning_rate_multiplier": _auto({"type": "number", "exclusiveMinimum": 0, "maximum": 10}),
        # Reinforcement fine-tuning only.
        "eval_interval": _auto({"type": "integer", "minimum": 1}),
        "eval_samples": _auto({"type": "integer", "minimum": 1}),
        "compute_multiplier": _auto({"type": "number", "exclusiveMinimum": 0, "maximum": 10}),
        "reasoning_effort": {"enum": ["default", "low", "medium", "high"]},
    },
}

GATE = {
    "type": "object",
    "additionalProperties": False,
    "description": "Deploy only when the final validation metrics pass (checked by the monitor).",
    "properties": {
        "max_valid_loss": {"type": "number", "exclusiveMinimum": 0},
        "min_valid_mean_token_accuracy": {"type": "number", "minimum": 0, "maximum": 1},
        "min_valid_reward_mean": {"type": "number", "description": "reinforcement fine-tuning: the grader's mean "
                                                                  "reward on the validation data"},
    },
}

DEPLOYMENT_REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": DEPLOYMENT_NAME_PATTERN,
                 "description": "2-64 of a-z A-Z 0-9 . - _, starting with a letter or digit"},
        "sku": {"enum": SKUS},
        "capacity": {"type": "integer", "minimum": 1, "maximum": 1000},
        "keep_alive": {"enum": KEEP_ALIVE},
        "gate": GATE,
        "account": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}[A-Za-z0-9]$|^[A-Za-z0-9]$",
                    "description": "The account of the pool to deploy to (README \"Several accounts\"); default: "
                                   "where it was trained, else one with a free slot"},
        "model": {"type": "string", "pattern": r"^(final|best|ftchkpt-[A-Za-z0-9_-]{1,128}|[A-Za-z0-9][A-Za-z0-9_.:-]{1,255})$",
                  "description": "What to deploy: final (default: the fine-tuned model), best (the deployable "
                                 "checkpoint, one of the last three, with the lowest validation loss; training "
                                 "loss without validation data), or a checkpoint's id; the gate judges the chosen "
                                 "one's figures"},
    },
}

CREATE_JOB_REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["training_dataset"],
    "properties": {
        "training_dataset": {"type": "string", "minLength": 1, "maxLength": 1024,
                             "description": "Name (current version) or id (name@version) of a ready dataset"},
        "validation_dataset": {"type": ["string", "null"], "minLength": 1, "maxLength": 1024},
        "base_model": {"type": "string", "minLength": 1, "maxLength": 256,
                       "description": "A base model, a fine-tuned model, or a job id of this service; "
                                      "defaults to the training dataset's"},
        "method": {"enum": ["supervised", "dpo", "reinforcement"]},
        "grader": {"type": "object", "description": "Reinforcement fine-tuning: the grader that scores the "
                                                    "model's answers (string_check, text_similarity, score_model, "
                                                    "python, endpoint or multi; the openai grader types). Checked "
                                                    "here, and with Azure OpenAI's validate call, before the job "
                                                    "is created; every {{item.<field>}} it names must be in every "
                                                    "example of the datasets"},
        "response_format": {"type": "object", "description": "Reinforcement fine-tuning: a JSON schema the "
                                                             "answers follow"},
        "hyperparameters": HYPERPARAMETERS_REQUEST,
        "suffix": {"type": "string", "pattern": SUFFIX_PATTERN, "description": "1-40 of a-z A-Z 0-9 - _"},
        "seed": {"type": "integer", "minimum": 0, "maximum": 2147483647},
        "training_type": {"enum": list(TRAINING_TYPES)},
        "deployment": {"oneOf": [{"type": "boolean"}, {"$ref": "#/components/schemas/DeploymentRequest"}],
                       "description": "false: do not deploy; true or left out: deploy with the defaults"},
    },
}

PATCH_DEPLOYMENT_REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["keep_alive"],
    "properties": {"keep_alive": {"enum": KEEP_ALIVE}},
}

PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["detail"],
            "properties": {"field": {"type": "string"}, "pointer": {"type": "string"},
                           "detail": {"type": "string"}}}},
        "code": {"type": ["string", "null"], "description": "Azure OpenAI's error code, when it refused"},
        "retry_after": {"type": "integer"},
    },
    "additionalProperties": True,
}

_HP_VALUE = {"oneOf": [{"type": "number"}, {"type": "string"}]}

JOB_SUMMARY_PROPERTIES = {
    "id": {"type": "string"},
    "status": {"enum": JOB_STATUSES},
    "openai_job_id": _STR_OR_NULL,
    "base_model": _STR_OR_NULL,
    "method": _STR_OR_NULL,
    "training_dataset": _STR_OR_NULL,
    "fine_tuned_model": _STR_OR_NULL,
    "deployment_name": _STR_OR_NULL,
    "created_at": _TIME,
    "updated_at": _TIME,
    "finished_at": _TIME,
}

JOB_SUMMARY = {"type": "object", "required": ["id", "status", "created_at"], "properties": JOB_SUMMARY_PROPERTIES}

JOB = {
    "type": "object",
    "required": ["id", "status", "base_model", "training_dataset", "hyperparameters", "deployment", "created_at"],
    "properties": {
        **JOB_SUMMARY_PROPERTIES,
        "queue_position": {"type": "integer", "minimum": 1,
                           "description": "While waiting: 1 for the next job to be created at Azure OpenAI"},
        "requested_by": {"$ref": "#/components/schemas/RequestedBy"},
        "created_by": {"type": ["string", "null"],
                       "description": "Who started it: the signed-in principal's name, or \"function key\""},
        "openai_status": _STR_OR_NULL,
        "account": {"type": ["string", "null"],
                    "description": "The Azure OpenAI account of the pool it runs on (README \"Several accounts\")"},
        "placement_reason": {"type": ["string", "null"],
                             "description": "Why that account (or, while waiting, why none yet)"},
        "base_job": _STR_OR_NULL,
        "training_file_id": _STR_OR_NULL,
        "validation_dataset": _STR_OR_NULL,
        "validation_file_id": _STR_OR_NULL,
        "requested_hyperparameters": {"type": "object", "additionalProperties": _HP_VALUE},
        "hyperparameters": {"type": "object", "additionalProperties": _HP_VALUE,
                            "description": "As Azure OpenAI reports them (\"auto\" until it has chosen)"},
        "suffix": _STR_OR_NULL,
        "seed": _INT_OR_NULL,
        "training_type": _STR_OR_NULL,
        "trained_tokens": _INT_OR_NULL,
        "error": {"type": ["object", "null"], "properties": {"code": _STR_OR_NULL, "message": _STR_OR_NULL,
                                                             "param": _STR_OR_NULL}},
        "last_error": _LAST_ERROR,
        "events": {"type": "array", "items": {"type": "object"}},
        "metrics": {"type": ["object", "null"]},
        "checkpoints": {"type": "array", "description": "One per epoch (and per pause), newest first; the last "
                                                        "three can be deployed",
                        "items": {"type": "object", "properties": {
                            "id": {"type": "string"}, "step": {"type": ["integer", "null"]},
                            "model": {"type": ["string", "null"]}, "at": _TIME, "metrics": {"type": ["object", "null"]},
                            "deployable": {"type": "boolean"}}}},
        "model_choice": {"type": ["object", "null"], "description": "What deployment.model asked for, the model "
                                                                    "or checkpoint chosen, and why"},
        "deployed_model": _STR_OR_NULL,
        "gate_result": {"type": ["object", "null"], "description": "The gate's checks (each with its limit and "
                                                                   "value) and what they judged"},
        "paused_reason": {"type": ["string", "null"], "description": "Why Azure paused it (e.g. the spending "
                                                                     "cap) and how to resume"},
        "retirement": {"type": ["object", "null"], "description": "Set when the model retires within 90 days: retires_on, "
                                                     "days_left, message (fine-tuned deployments stop serving "
                                                     "then)"},
        "results_blob": _STR_OR_NULL,
        "submitted_at": _TIME,
        "idempotency_key": _STR_OR_NULL,
        "deployment": {"oneOf": [{"type": "null"}, {
            "type": "object",
            "required": ["name", "sku", "capacity", "keep_alive"],
            "properties": {
                "name": {"type": "string"}, "sku": {"type": "string"}, "capacity": {"type": "integer"},
                "keep_alive": {"enum": KEEP_ALIVE}, "gate": {"oneOf": [{"type": "null"}, GATE]},
                "state": {"enum": DEPLOYMENT_STATES + [None]}, "model": _STR_OR_NULL,
                "provisioning_state": _STR_OR_NULL,
                "idle_deadline": _TIME, "last_activity": _TIME,
            },
        }]},
    },
}


def _list(item_ref: str) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "next"],
            "properties": {"items": {"type": "array", "items": {"$ref": item_ref}},
                           "next": {"type": ["string", "null"],
                                    "description": "Pass as ?continuation= for the next page; null at the end"}}}


DATASET_PROPERTIES = {
    "id": {"type": "string", "description": "name@version"},
    "name": {"type": "string"},
    "version": {"type": "string"},
    "base_model": {"type": "string"},
    "method": _STR_OR_NULL,
    "status": {"enum": DATASET_STATUSES},
    "is_current": {"type": "boolean"},
    "file_id": _STR_OR_NULL,
    "upload_path": _STR_OR_NULL,
    "size": _INT_OR_NULL,
    "examples": _INT_OR_NULL,
    "error_count": _INT_OR_NULL,
    "warning_count": _INT_OR_NULL,
    "errors": {"type": "array", "items": {"type": "object"}, "description": "The first errors of the report"},
    "error": _STR_OR_NULL,
    "report_blob": _STR_OR_NULL,
    "grader_blob": {"type": ["string", "null"], "description": "Reinforcement fine-tuning: the grader it was "
                                                               "validated with"},
    "file_evicted_at": {"type": ["string", "null"], "description": "Its file was deleted at Azure OpenAI when "
                                                                   "nothing needed it (uploaded again on demand)"},
    "created_at": _TIME,
    "updated_at": _TIME,
}

DATASET_SUMMARY = {"type": "object", "required": ["id", "name", "version", "base_model", "status"],
                   "properties": DATASET_PROPERTIES}

DATASET = {
    "type": "object",
    "required": ["id", "name", "version", "base_model", "status", "report", "versions"],
    "properties": {
        **DATASET_PROPERTIES,
        "report": {"type": ["object", "null"], "description": "The validation report (errors and warnings "
                                                              "capped at 100 each)"},
        "versions": {"type": "array", "items": {"type": "object", "required": ["id", "status"], "properties": {
            "id": {"type": "string"}, "status": {"type": "string"}, "is_current": {"type": "boolean"},
            "created_at": _TIME}}},
    },
}

DEPLOYMENT_EVENT = {
    "type": "object",
    "required": ["at", "action"],
    "properties": {"at": _TIME, "action": {"type": "string"}, "reason": _STR_OR_NULL, "outcome": _STR_OR_NULL,
                   "deadline": _TIME, "detail": {}},
}

DEPLOYMENT_PROPERTIES = {
    "name": {"type": "string"},
    "account": _STR_OR_NULL,
    "model": _STR_OR_NULL,
    "job_id": _STR_OR_NULL,
    "sku": _STR_OR_NULL,
    "capacity": _INT_OR_NULL,
    "keep_alive": {"enum": KEEP_ALIVE},
    "state": {"enum": DEPLOYMENT_STATES},
    "provisioning_state": _STR_OR_NULL,
    "created_at": _TIME,
    "last_activity": _TIME,
    "idle_deadline": {"type": ["string", "null"],
                      "description": "When Azure's idle rule (15 days; 24 hours after creation on the developer "
                                     "tier) would delete the deployment"},
    "adopted": {"type": ["boolean", "null"]},
    "hosting_hours": _NUM_OR_NULL,
    "estimated_cost_usd": _NUM_OR_NULL,
    "redeploys": _INT_OR_NULL,
    "pings": _INT_OR_NULL,
    "restores": _INT_OR_NULL,
    "previous_model": {"type": ["string", "null"], "description": "The model it served before the last roll "
                                                                  "forward (what a rollback serves again)"},
    "pending_model": {"type": ["string", "null"], "description": "A model it was asked to serve next"},
    "requested_by": {"$ref": "#/components/schemas/RequestedBy"},
    "rolls": _INT_OR_NULL,
    "blocked_reason": _STR_OR_NULL,
    "retirement": {"type": ["object", "null"], "description": "Set when the model retires within 90 days: retires_on, "
                                                     "days_left, message (fine-tuned deployments stop serving "
                                                     "then)"},
    "last_error": _LAST_ERROR,
    "updated_at": _TIME,
    "account": {"type": ["string", "null"], "description": "The account of the pool it is deployed in"},
    "source": {"type": ["string", "null"], "description": "The resource id of the account that trained the model, "
                                                          "when it is another one (ARM's properties.model.source)"},
    "placement_reason": {"type": ["string", "null"], "description": "Why that account (or why none could host it)"},
}

DEPLOYMENT_SUMMARY = {"type": "object", "required": ["name", "keep_alive", "state"],
                      "properties": DEPLOYMENT_PROPERTIES}
DEPLOYMENT = {"type": "object", "required": ["name", "keep_alive", "state", "events"],
              "properties": {**DEPLOYMENT_PROPERTIES,
                             "events": {"type": "array", "items": {"$ref": "#/components/schemas/DeploymentEvent"}}}}

# ----------------------------------------------------------------- read by the dashboard too

JOB_RESULTS = {
    "type": "object",
    "description": "The job's results.csv (stored by the monitor when the job succeeded) as rows",
    "required": ["id", "status", "results_blob", "columns", "rows", "row_count", "every"],
    "properties": {
        "id": {"type": "string"},
        "status": {"enum": JOB_STATUSES},
        "method": _STR_OR_NULL,
        "results_blob": {"type": ["string", "null"], "description": "container/path of the stored results.csv; "
                                                                    "null until the job has succeeded"},
        "columns": {"type": "array", "items": {"type": "string"},
                    "description": "The file's columns in order, trimmed and lower-case (step, train_loss, "
                                   "valid_loss, train_mean_token_accuracy, ...; reinforcement fine-tuning: "
                                   "train_reward_mean, valid_reward_mean, train_reward_mean_<grader>, ...)"},
        "rows": {"type": "array", "items": {"type": "object",
                                             "additionalProperties": {"type": ["number", "string", "null"]}},
                 "description": "One object per step: numbers, null for an empty cell (validation columns are "
                                "empty on steps without a validation run)"},
        "row_count": {"type": "integer", "minimum": 0, "description": "Rows in the file"},
        "every": {"type": "integer", "minimum": 1,
                  "description": "1, or for a file of more than 5,000 rows: every n-th row is given (and the last)"},
        "note": {"type": "string", "description": "Why there are no rows"},
    },
}

JOB_HISTORY = {
    "type": "object",
    "required": ["id", "status", "status_history"],
    "properties": {
        "id": {"type": "string"},
        "status": {"enum": JOB_STATUSES},
        "status_changed_at": _TIME,
        "status_history": {"type": "array", "description": "Every status the job has had, oldest first",
                           "items": {"type": "object", "required": ["status"],
                                     "properties": {"status": {"type": "string"}, "at": _TIME,
                                                    "why": _STR_OR_NULL,
                                                    "by": {"type": ["string", "null"],
                                                           "description": "Who made the change through the API "
                                                                          "(a principal's name, or \"function "
                                                                          "key\"); null: the service itself"}}}},
    },
}

VALIDATION_CODES = {
    "type": "object",
    "required": ["codes"],
    "properties": {"codes": {
        "type": "object",
        "description": "Every code a validation report's errors and warnings carry: its severity, what it means "
                       "and how to fix it",
        "additionalProperties": {"type": "object", "required": ["severity", "meaning", "fix"],
                                 "properties": {"severity": {"enum": ["error", "warning"]},
                                                "meaning": {"type": "string"}, "fix": {"type": "string"}}}}},
}

REQUESTED_BY = {
    "type": ["object", "null"],
    "description": "A change asked through the API that the service is still carrying out (a rollback, a pause "
                   "Azure has not finished): who asked, why, when, and the states that finish it",
    "properties": {"by": {"type": "string"}, "why": {"type": "string"}, "at": _TIME,
                   "until": {"type": "array", "items": {"type": "string"}}},
}

COMPONENTS: dict[str, Any] = {
    "CreateJobRequest": CREATE_JOB_REQUEST,
    "Hyperparameters": HYPERPARAMETERS_REQUEST,
    "DeploymentRequest": DEPLOYMENT_REQUEST,
    "Gate": GATE,
    "PatchDeploymentRequest": PATCH_DEPLOYMENT_REQUEST,
    "Problem": PROBLEM,
    "Job": JOB,
    "JobSummary": JOB_SUMMARY,
    "JobList": _list("#/components/schemas/JobSummary"),
    "Dataset": DATASET,
    "DatasetSummary": DATASET_SUMMARY,
    "DatasetList": _list("#/components/schemas/DatasetSummary"),
    "Deployment": DEPLOYMENT,
    "DeploymentSummary": DEPLOYMENT_SUMMARY,
    "DeploymentList": {"type": "object", "required": ["items"],
                       "properties": {"items": {"type": "array",
                                                "items": {"$ref": "#/components/schemas/DeploymentSummary"}}}},
    "DeploymentEvent": DEPLOYMENT_EVENT,
    "JobResults": JOB_RESULTS,
    "JobHistory": JOB_HISTORY,
    "RequestedBy": REQUESTED_BY,
    "ValidationCodes": VALIDATION_CODES,
}
