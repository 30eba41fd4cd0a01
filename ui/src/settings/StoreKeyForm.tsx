// Put a provider's API key in the OS keychain. The key goes straight to the engine, which
// stores it under service `processops`; it is never kept in the UI or in processops.toml.
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { AlertTriangle, Eye, EyeOff, KeyRound } from "lucide-react";
import { useId, useState } from "react";
import { toast } from "sonner";
import { api } from "../api/client";
import { ApiError } from "../api/transport";
import { Button, inputClass } from "../components/ui";
import { isValid, validateKeyForm, type KeyForm } from "./keyForm";

export function StoreKeyForm({
  accounts,
  initialAccount = "",
  onDone,
}: {
  /** Keychain accounts the providers name, offered as suggestions. */
  accounts: string[];
  initialAccount?: string;
  onDone?: () => void;
}) {
  const id = useId();
  const queryClient = useQueryClient();
  const [form, setForm] = useState<KeyForm>({ account: initialAccount, key: "" });
  const [touched, setTouched] = useState<Record<keyof KeyForm, boolean>>({ account: false, key: false });
  const [reveal, setReveal] = useState(false);
  const [unavailable, setUnavailable] = useState<string | null>(null);
  const errors = validateKeyForm(form);
  const show = (field: keyof KeyForm) => (touched[field] ? errors[field] : undefined);

  const store = useMutation({
    mutationFn: (f: KeyForm) => api.storeKey({ account: f.account.trim(), key: f.key.trim() }),
    onSuccess: (_, f) => {
      toast.success("Key stored in the keychain", { description: `service processops, account ${f.account.trim()}` });
      setForm((prev) => ({ ...prev, key: "" }));
      setTouched({ account: false, key: false });
      setUnavailable(null);
      void queryClient.invalidateQueries({ queryKey: ["settings"] });
      onDone?.();
    },
    onError: (e) => {
      // No keychain on this machine (e.g. a headless Linux box): say so where the form is.
      if (e instanceof ApiError && (e.status === 503 || e.code === "keychain_unavailable")) {
        setUnavailable(e.message);
        toast.error("The OS keychain is not available here", { description: "The form says why and what to do instead." });
      } else {
        toast.error(e.message);
      }
    },
  });

  return (
    <form
      noValidate
      data-testid="store-key-form"
      className="flex flex-col gap-3"
      onSubmit={(e) => {
        e.preventDefault();
        setTouched({ account: true, key: true });
        if (isValid(errors)) store.mutate(form);
      }}
    >
      <div className="grid gap-3 sm:grid-cols-[200px_1fr]">
        <div className="flex flex-col gap-1">
          <label htmlFor={`${id}-account`} className="text-xs font-medium text-muted">
            Keychain account
          </label>
          <input
            id={`${id}-account`}
            className={inputClass}
            value={form.account}
            list={`${id}-accounts`}
            autoComplete="off"
            spellCheck={false}
            placeholder="anthropic"
            aria-invalid={Boolean(show("account"))}
            aria-describedby={`${id}-account-error`}
            onChange={(e) => setForm({ ...form, account: e.target.value })}
            onBlur={() => setTouched((t) => ({ ...t, account: true }))}
          />
          <datalist id={`${id}-accounts`}>
            {accounts.map((a) => (
              <option key={a} value={a} />
            ))}
          </datalist>
          <FieldError id={`${id}-account-error`} message={show("account")} />
        </div>
        <div className="flex flex-col gap-1">
          <label htmlFor={`${id}-key`} className="text-xs font-medium text-muted">
            API key
          </label>
          <div className="relative">
            <input
              id={`${id}-key`}
              className={`${inputClass} pr-9 font-mono`}
              type={reveal ? "text" : "password"}
              value={form.key}
              autoComplete="off"
              spellCheck={false}
              placeholder="sk-…"
              aria-invalid={Boolean(show("key"))}
              aria-describedby={`${id}-key-error`}
              onChange={(e) => setForm({ ...form, key: e.target.value })}
              onBlur={() => setTouched((t) => ({ ...t, key: true }))}
            />
            <button
              type="button"
              onClick={() => setReveal((r) => !r)}
              aria-label={reveal ? "Hide the key" : "Show the key"}
              className="absolute top-1/2 right-1.5 -translate-y-1/2 rounded p-1 text-faint hover:bg-hover hover:text-fg"
            >
              {reveal ? <EyeOff className="size-3.5" /> : <Eye className="size-3.5" />}
            </button>
          </div>
          <FieldError id={`${id}-key-error`} message={show("key")} />
        </div>
      </div>
      {unavailable && (
        <div role="alert" className="flex gap-2 rounded-md border border-warn/40 bg-warn/10 px-3 py-2 text-xs text-fg">
          <AlertTriangle className="mt-px size-3.5 shrink-0 text-warn" />
          <div>
            <div className="font-medium">The OS keychain is not available here</div>
            <div className="mt-0.5 break-words text-muted">{unavailable}</div>
            {!unavailable.includes("api_key_env") && (
              <div className="mt-1 text-muted">
                Use an environment variable instead: set <code className="font-mono">api_key_env</code> on the provider in processops.toml.
              </div>
            )}
          </div>
        </div>
      )}
      <div className="flex items-center gap-2">
        <Button type="submit" variant="primary" disabled={store.isPending} data-testid="store-key-submit">
          <KeyRound className="size-3.5" />
          {store.isPending ? "Storing…" : "Store key in keychain"}
        </Button>
        {onDone && (
          <Button variant="ghost" onClick={onDone}>
            Cancel
          </Button>
        )}
        <span className="ml-auto text-[11px] text-faint">Sent once to the local engine; never shown again.</span>
      </div>
    </form>
  );
}

function FieldError({ id, message }: { id: string; message: string | undefined }) {
  return (
    <div id={id} className="min-h-4 text-[11.5px] text-danger" aria-live="polite">
      {message}
    </div>
  );
}
