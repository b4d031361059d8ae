"""The local development stack: Azurite, the Azure OpenAI / ARM simulator, the
local Functions runner and the scenarios. A development tool, never imported by
``functions/`` or ``shared/``."""
