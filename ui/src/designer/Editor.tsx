// One open blueprint: toolbar, palette, canvas (or YAML), inspector, problems and dry run.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { ReactFlowProvider, useReactFlow } from "@xyflow/react";
import { clsx } from "clsx";
import { CircleAlert, CircleCheck, Code, LayoutGrid, Loader2, Play, Redo2, Save, TriangleAlert, Undo2, Workflow } from "lucide-react";
import { useCallback, useEffect, useMemo, useState, type ReactNode } from "react";
import { useHotkeys } from "react-hotkeys-hook";
import { useNavigate } from "react-router";
import { toast } from "sonner";
import { api } from "../api/client";
import { ApiError } from "../api/transport";
import { Button, Kbd } from "../components/ui";
import { addStepAction, addTriggerAction, copyAction, deleteSelectionAction, disconnectAction, pasteAction, selectAllAction } from "./actions";
import { BlueprintPicker } from "./BlueprintPicker";
import { BottomPanel, type DryRunControls, type PanelTab } from "./BottomPanel";
import { Canvas, FIT_VIEW } from "./Canvas";
import { Inspector } from "./Inspector";
import { autoLayout } from "./layout";
import { Palette } from "./Palette";
import { defaultTrigger, samplePayload } from "./payload";
import { saveDraft, savePositions, type Draft } from "./storage";
import { DesignerStore, useDesigner, type XY } from "./store";
import { YamlView } from "./YamlView";

export interface EditorProps {
  blueprintId: string;
  source: string;
  savedSource: string;
  baseVersion: string | null;
  isNew: boolean;
  positions: Record<string, XY>;
  /** A local draft that differs from the file, offered for restore. */
  draft: Draft | null;
}

export function Editor(props: EditorProps) {
  return (
    <ReactFlowProvider>
      <EditorInner {...props} />
    </ReactFlowProvider>
  );
}

function useDark(): boolean {
  const [dark, setDark] = useState(() => document.documentElement.classList.contains("dark"));
  useEffect(() => {
    const obs = new MutationObserver(() => setDark(document.documentElement.classList.contains("dark")));
    obs.observe(document.documentElement, { attributes: true, attributeFilter: ["class"] });
    return () => obs.disconnect();
  }, []);
  return dark;
}

function EditorInner(props: EditorProps) {
  const [store] = useState(
    () =>
      new DesignerStore({
        blueprintId: props.blueprintId,
        source: props.source,
        savedSource: props.savedSource,
        baseVersion: props.baseVersion,
        isNew: props.isNew,
        positions: props.positions,
      }),
  );
  const rf = useReactFlow();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const dark = useDark();
  const schema = useQuery({ queryKey: ["blueprint-schema"], queryFn: api.blueprintSchema, staleTime: Infinity });

  const source = useDesigner(store, (s) => s.source);
  const savedSource = useDesigner(store, (s) => s.savedSource);
  const positions = useDesigner(store, (s) => s.positions);
  const bp = useDesigner(store, (s) => s.bp);
  const canUndo = useDesigner(store, (s) => s.past.length > 0);
  const canRedo = useDesigner(store, (s) => s.future.length > 0);
  const isNew = useDesigner(store, (s) => s.isNew);
  const blueprintId = useDesigner(store, (s) => s.blueprintId);
  const dirty = source !== savedSource || isNew;

  const [view, setView] = useState<"canvas" | "yaml">("canvas");
  const [ready, setReady] = useState(false);
  const [selectedEdge, setSelectedEdge] = useState<string | null>(null);
  const [panelOpen, setPanelOpen] = useState(false);
  const [panelTab, setPanelTab] = useState<PanelTab>("problems");
  const [draftOffer, setDraftOffer] = useState<Draft | null>(props.draft);
  const [saving, setSaving] = useState(false);

  // Initial auto-layout; positions dragged earlier (localStorage) win.
  useEffect(() => {
    let live = true;
    const s = store.get();
    autoLayout(s.graph)
      .then((laid) => {
        if (!live) return;
        // Positions written in the file (`layout:`) beat auto-layout; local drags beat both.
        const fromFile: Record<string, XY> = {};
        for (const st of s.graph.steps) if (st.layout) fromFile[st.key] = st.layout;
        store.setPositions({ ...laid, ...fromFile, ...s.positions });
        setReady(true);
      })
      .catch(() => live && setReady(true));
    return () => {
      live = false;
    };
  }, [store]);

  // Validate with the engine's validator (the CLI's), a moment after each change.
  useEffect(() => {
    const t = window.setTimeout(() => {
      store.setValidation(source, null);
      api
        .validate(source)
        .then((r) => {
          if (store.get().source === source) store.setValidation(source, r.diagnostics);
        })
        .catch((e: unknown) => {
          store.setValidation(source, store.get().diagnostics);
          toast.error("Could not validate", { id: "validate-error", description: e instanceof Error ? e.message : String(e) });
        });
    }, 350);
    return () => window.clearTimeout(t);
  }, [source, store]);

  // Unsaved work survives closing the window.
  useEffect(() => {
    const write = () => {
      const s = store.get();
      if (s.source !== s.savedSource || s.isNew) saveDraft(s.blueprintId, { source: s.source, baseVersion: s.baseVersion, isNew: s.isNew, savedAt: Date.now() });
      else saveDraft(s.blueprintId, null);
    };
    const t = window.setTimeout(write, 400);
    window.addEventListener("beforeunload", write);
    return () => {
      window.clearTimeout(t);
      window.removeEventListener("beforeunload", write);
    };
  }, [source, savedSource, store]);

  useEffect(() => {
    const t = window.setTimeout(() => savePositions(blueprintId, positions), 300);
    return () => window.clearTimeout(t);
  }, [positions, blueprintId]);

  const save = useCallback(async () => {
    const s = store.get();
    if (s.syntaxError) {
      toast.error("Cannot save", { description: `The YAML does not parse: ${s.syntaxError}` });
      return;
    }
    if (!s.isNew && s.source === s.savedSource) {
      toast("No unsaved changes", { id: "nothing-to-save" });
      return;
    }
    setSaving(true);
    try {
      if (s.isNew) {
        const res = await api.createBlueprint({ source: s.source });
        saveDraft(s.blueprintId, null);
        savePositions(res.id, s.positions);
        store.markSaved(s.source, res.version, res.id);
        toast.success(`Created ${res.file}`);
        void queryClient.invalidateQueries({ queryKey: ["blueprints"] });
        if (res.id !== props.blueprintId) navigate(`/designer/${res.id}`, { replace: true });
      } else {
        const res = await api.saveBlueprint(s.blueprintId, { source: s.source, base_version: s.baseVersion });
        store.markSaved(s.source, res.version);
        saveDraft(s.blueprintId, null);
        toast.success(res.changed ? `Saved ${res.file}` : "Nothing changed", { description: res.changed ? "New runs use this version." : undefined });
        void queryClient.invalidateQueries({ queryKey: ["blueprints"] });
      }
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      if (e instanceof ApiError && e.status === 409 && !s.isNew) {
        toast.error("The file changed on disk", {
          description: message,
          duration: 12000,
          action: {
            label: "Load theirs",
            onClick: () => {
              void api.blueprintSource(s.blueprintId).then((fresh) => {
                // Keep ours one undo step away.
                store.reset(fresh.source, fresh.version);
                toast("Loaded the file from disk", { description: "Your version is one undo (⌘Z) away." });
              });
            },
          },
        });
      } else {
        toast.error(e instanceof ApiError && e.status === 422 ? "The blueprint is not valid yet" : "Could not save", { description: message, duration: 10000 });
        setPanelTab("problems");
        setPanelOpen(true);
      }
    } finally {
      setSaving(false);
    }
  }, [store, queryClient, navigate, props.blueprintId]);

  // ---- dry run -------------------------------------------------------------------------------
  const [trigger, setTriggerState] = useState<string | null>(() => defaultTrigger(store.get().bp));
  const [payload, setPayload] = useState(() => JSON.stringify(samplePayload(store.get().bp, defaultTrigger(store.get().bp)), null, 2));
  const [running, setRunning] = useState(false);
  const runDry = useCallback(async () => {
    let parsed: unknown;
    try {
      parsed = payload.trim() ? JSON.parse(payload) : {};
    } catch (e) {
      toast.error("The payload is not valid JSON", { description: e instanceof Error ? e.message : String(e) });
      setPanelTab("dryrun");
      setPanelOpen(true);
      return;
    }
    const s = store.get();
    const wasOpen = panelOpen;
    setRunning(true);
    setPanelTab("dryrun");
    setPanelOpen(true);
    try {
      const report = await api.dryRun({ source: s.source, trigger, payload: parsed });
      store.setDryRun(report, s.source);
      // The panel just took space from the canvas: show the whole tree with its results.
      if (!wasOpen && view === "canvas") window.setTimeout(() => void rf.fitView({ ...FIT_VIEW, duration: 300 }), 60);
      if (report.status === "failed") toast.error("The dry run failed", { description: report.error ?? report.diagnostics[0]?.message });
    } catch (e) {
      toast.error("Could not dry-run", { description: e instanceof Error ? e.message : String(e) });
    } finally {
      setRunning(false);
    }
  }, [payload, trigger, store, panelOpen, view, rf]);
  const dry: DryRunControls = {
    trigger,
    setTrigger: (id) => {
      setTriggerState(id);
      setPayload(JSON.stringify(samplePayload(store.get().bp, id), null, 2));
    },
    payload,
    setPayload,
    resetPayload: () => setPayload(JSON.stringify(samplePayload(store.get().bp, trigger), null, 2)),
    running,
    run: () => void runDry(),
    clear: () => store.setDryRun(null, null),
  };

  // ---- keyboard ------------------------------------------------------------------------------
  const everywhere = { enableOnFormTags: true, enableOnContentEditable: true, preventDefault: true } as const;
  useHotkeys("mod+s", () => void save(), everywhere, [save]);
  useHotkeys("mod+enter", () => void runDry(), everywhere, [runDry]);
  useHotkeys("mod+z", () => store.undo(), { preventDefault: true }, [store]);
  useHotkeys("mod+shift+z, ctrl+y", () => store.redo(), { preventDefault: true }, [store]);
  useHotkeys(
    "delete, backspace",
    () => {
      if (selectedEdge) {
        const e = store.get().graph.edges.find((x) => x.id === selectedEdge);
        if (e) disconnectAction(store, e.source, e.sourceHandle, e.target);
        setSelectedEdge(null);
      } else deleteSelectionAction(store);
    },
    { preventDefault: true },
    [store, selectedEdge],
  );
  useHotkeys(
    "mod+c",
    (e) => {
      if (window.getSelection()?.toString()) return;
      if (copyAction(store)) e.preventDefault();
    },
    [store],
  );
  useHotkeys("mod+v", () => void pasteAction(store), { preventDefault: true }, [store]);
  useHotkeys("mod+a", () => selectAllAction(store), { preventDefault: true }, [store]);
  useHotkeys("escape", () => {
    store.select([]);
    setSelectedEdge(null);
  }, [store]);

  const relayout = useCallback(async () => {
    const laid = await autoLayout(store.get().graph);
    store.setPositions(laid);
    window.requestAnimationFrame(() => void rf.fitView({ ...FIT_VIEW, duration: 350 }));
  }, [store, rf]);

  const reveal = useCallback(
    (key: string) => {
      store.select([key]);
      setSelectedEdge(null);
      setView("canvas");
      const node = rf.getNode(key);
      if (node) {
        const w = node.measured?.width ?? 248;
        const h = node.measured?.height ?? 80;
        void rf.setCenter(node.position.x + w / 2, node.position.y + h / 2, { zoom: Math.max(rf.getZoom(), 0.9), duration: 300 });
      }
    },
    [store, rf],
  );

  // Bring a freshly added node into view when it landed off-screen.
  const showIfHidden = useCallback(
    (key: string | undefined) => {
      if (!key || view !== "canvas") return;
      const p = store.get().positions[key];
      if (!p) return;
      const el = document.querySelector(".designer-flow");
      if (!el) return;
      const r = el.getBoundingClientRect();
      const tl = rf.screenToFlowPosition({ x: r.left, y: r.top });
      const br = rf.screenToFlowPosition({ x: r.right, y: r.bottom });
      const inside = p.x > tl.x && p.y > tl.y && p.x + 240 < br.x && p.y + 80 < br.y;
      if (!inside) void rf.setCenter(p.x + 124, p.y + 40, { zoom: Math.max(rf.getZoom(), 0.6), duration: 250 });
    },
    [store, rf, view],
  );

  const name = typeof bp?.name === "string" ? bp.name : blueprintId;

  return (
    <div className="flex h-full min-h-0 flex-col">
      <header className="flex h-12 shrink-0 items-center gap-2 border-b border-border bg-panel px-3">
        <BlueprintPicker current={blueprintId} name={name} dirty={dirty} isNew={isNew} />
        <div className="mx-1 h-5 w-px bg-border" />
        <div role="tablist" aria-label="View" className="flex rounded-md bg-sunken p-0.5">
          <ViewTab active={view === "canvas"} onClick={() => setView("canvas")} icon={<Workflow className="size-3.5" />} label="Canvas" />
          <ViewTab active={view === "yaml"} onClick={() => setView("yaml")} icon={<Code className="size-3.5" />} label="YAML" testId="view-yaml" />
        </div>
        <div className="ml-1 flex items-center">
          <IconBtn label="Undo (⌘Z)" disabled={!canUndo} onClick={store.undo} testId="undo-button">
            <Undo2 className="size-4" />
          </IconBtn>
          <IconBtn label="Redo (⌘⇧Z)" disabled={!canRedo} onClick={store.redo} testId="redo-button">
            <Redo2 className="size-4" />
          </IconBtn>
          <IconBtn label="Auto-layout" onClick={() => void relayout()} disabled={view !== "canvas"} testId="layout-button">
            <LayoutGrid className="size-4" />
          </IconBtn>
        </div>
        <div className="ml-auto flex items-center gap-2">
          <ValidationStatus store={store} onClick={() => {
            setPanelTab("problems");
            setPanelOpen(true);
          }} />
          <Button data-testid="dry-run-button" onClick={() => void runDry()} disabled={running} title="Run on the sample payload (⌘↵)">
            {running ? <Loader2 className="size-3.5 animate-spin" /> : <Play className="size-3.5" />}
            Dry run
          </Button>
          <Button data-testid="save-button" variant="primary" onClick={() => void save()} disabled={saving || (!dirty && !isNew)} title="Save to the blueprint file (⌘S)">
            {saving ? <Loader2 className="size-3.5 animate-spin" /> : <Save className="size-3.5" />}
            {isNew ? "Create" : "Save"}
            <span className="ml-0.5 opacity-70">
              <Kbd>⌘S</Kbd>
            </span>
          </Button>
        </div>
      </header>
      {draftOffer && (
        <div role="status" data-testid="draft-banner" className="flex shrink-0 items-center gap-3 border-b border-warn/30 bg-warn/8 px-4 py-2 text-[12.5px]">
          <TriangleAlert className="size-4 shrink-0 text-warn" />
          <span>
            You have unsaved changes from {new Date(draftOffer.savedAt).toLocaleString()}.
            {draftOffer.baseVersion !== props.baseVersion && " The file has changed since; restoring replaces it in the editor (the file stays until you save)."}
          </span>
          <div className="ml-auto flex gap-2">
            <Button size="sm" variant="primary" data-testid="draft-restore" onClick={() => {
              store.setSource(draftOffer.source);
              setDraftOffer(null);
              toast.success("Restored your unsaved changes");
            }}>
              Restore
            </Button>
            <Button size="sm" variant="ghost" onClick={() => {
              saveDraft(blueprintId, null);
              setDraftOffer(null);
            }}>
              Discard
            </Button>
          </div>
        </div>
      )}
      <div className="flex min-h-0 flex-1">
        <Palette
          onAddStep={(k) => showIfHidden(addStepAction(store, k))}
          onAddTrigger={(k) => {
            const id = addTriggerAction(store, k);
            showIfHidden(id ? `trigger:${id}` : undefined);
          }}
        />
        <div className="flex min-w-0 flex-1 flex-col">
          <div className="relative min-h-0 flex-1">
            {view === "yaml" ? (
              <YamlView store={store} />
            ) : ready ? (
              <Canvas store={store} dark={dark} selectedEdge={selectedEdge} onSelectEdge={setSelectedEdge} />
            ) : (
              <div className="flex h-full items-center justify-center gap-2 text-muted">
                <Loader2 className="size-4 animate-spin" /> Laying out…
              </div>
            )}
            {selectedEdge && view === "canvas" && <EdgeHint />}
          </div>
          <BottomPanel store={store} tab={panelTab} open={panelOpen} onTab={setPanelTab} onToggle={() => setPanelOpen((o) => !o)} onReveal={reveal} dry={dry} />
        </div>
        <Inspector store={store} schema={schema.data ?? null} />
      </div>
    </div>
  );
}

function EdgeHint() {
  return (
    <div className="pointer-events-none absolute top-3 left-1/2 -translate-x-1/2 rounded-full border border-border bg-panel px-3 py-1 text-[12px] text-muted shadow-sm">
      Edge selected · <Kbd>⌫</Kbd> to disconnect
    </div>
  );
}

function ViewTab({ active, onClick, icon, label, testId }: { active: boolean; onClick: () => void; icon: ReactNode; label: string; testId?: string }) {
  return (
    <button
      type="button"
      role="tab"
      aria-selected={active}
      data-testid={testId}
      onClick={onClick}
      className={clsx("inline-flex h-7 items-center gap-1.5 rounded px-2.5 text-[12.5px] font-medium transition-colors", active ? "bg-panel text-fg shadow-sm" : "text-muted hover:text-fg")}
    >
      {icon}
      {label}
    </button>
  );
}

function IconBtn({ label, onClick, disabled, children, testId }: { label: string; onClick: () => void; disabled?: boolean; children: ReactNode; testId?: string }) {
  return (
    <button
      type="button"
      aria-label={label}
      title={label}
      data-testid={testId}
      disabled={disabled}
      onClick={onClick}
      className="grid size-8 place-items-center rounded-md text-muted transition-colors hover:bg-hover hover:text-fg disabled:opacity-35 disabled:hover:bg-transparent"
    >
      {children}
    </button>
  );
}

function ValidationStatus({ store, onClick }: { store: DesignerStore; onClick: () => void }) {
  const diagnostics = useDesigner(store, (s) => s.diagnostics);
  const syntaxError = useDesigner(store, (s) => s.syntaxError);
  const checked = useDesigner(store, (s) => s.validatedSource !== null);
  const validating = useDesigner(store, (s) => s.validating);
  const current = useDesigner(store, (s) => s.validatedSource === s.source);
  const errors = useMemo(() => diagnostics.filter((d) => d.severity === "error").length, [diagnostics]);
  const warnings = diagnostics.length - errors;
  let content: ReactNode;
  let tone: string;
  if (syntaxError) {
    content = (
      <>
        <CircleAlert className="size-3.5" /> YAML syntax error
      </>
    );
    tone = "text-danger bg-danger/10";
  } else if (!checked) {
    content = (
      <>
        <Loader2 className="size-3.5 animate-spin" /> Checking
      </>
    );
    tone = "text-muted bg-sunken";
  } else if (errors > 0) {
    content = (
      <>
        <CircleAlert className="size-3.5" /> {errors} problem{errors === 1 ? "" : "s"}
      </>
    );
    tone = "text-danger bg-danger/10";
  } else {
    content = (
      <>
        <CircleCheck className="size-3.5" /> {warnings > 0 ? `Valid · ${warnings} warning${warnings === 1 ? "" : "s"}` : "Valid"}
      </>
    );
    tone = warnings > 0 ? "text-warn bg-warn/10" : "text-ok bg-ok/10";
  }
  return (
    <button
      type="button"
      data-testid="validation-status"
      data-state={syntaxError ? "syntax" : !checked ? "checking" : errors ? "invalid" : "valid"}
      data-current={current && !validating ? "true" : "false"}
      onClick={onClick}
      title="Checked by the same validator as `processops validate`"
      className={clsx("inline-flex h-7 items-center gap-1.5 rounded-full px-2.5 text-[12px] font-medium transition-opacity", tone, (validating || !current) && checked && "opacity-70")}
    >
      {content}
    </button>
  );
}
