"""Built-in prompt templates (YAML); a user overrides them in $TTC_USER_PATH/prompts/."""
