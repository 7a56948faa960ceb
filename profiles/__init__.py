"""Built-in profiles (YAML): budget presets and sampling defaults; overridable in $TTC_USER_PATH/profiles/."""
