// Checks for the "store an API key in the keychain" form. The engine only insists on both
// fields being non-empty; these catch the usual paste mistakes before the key leaves the form.

export interface KeyForm {
  account: string;
  key: string;
}

export type KeyFormErrors = Partial<Record<keyof KeyForm, string>>;

const ACCOUNT = /^[A-Za-z0-9][A-Za-z0-9._@-]*$/;

export function validateKeyForm(form: KeyForm): KeyFormErrors {
  const errors: KeyFormErrors = {};
  const account = form.account.trim();
  if (!account) errors.account = "Name the keychain account (the provider's api_key_keychain).";
  else if (account.length > 128) errors.account = "The account name is longer than 128 characters.";
  else if (!ACCOUNT.test(account)) {
    errors.account = "Use letters, digits, dots, dashes, underscores or @, e.g. anthropic.";
  }
  const key = form.key.trim();
  if (!key) errors.key = "Paste the API key.";
  else if (/\s/.test(key)) errors.key = "The key contains spaces or line breaks; check what was pasted.";
  else if (key.length < 8) errors.key = "That looks too short for an API key.";
  else if (key.length > 4096) errors.key = "That is longer than any API key (4096 characters at most).";
  return errors;
}

export function isValid(errors: KeyFormErrors): boolean {
  return Object.keys(errors).length === 0;
}
