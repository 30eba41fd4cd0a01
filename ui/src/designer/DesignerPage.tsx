// The Designer screen: a blueprint list when none is open, else the editor for one.
import { useQuery } from "@tanstack/react-query";
import { ArrowRight, FilePlus2, GitBranch, Workflow } from "lucide-react";
import { Link, useParams } from "react-router";
import { api } from "../api/client";
import { Badge, Button, EmptyState, ErrorState, PageHeader, Spinner } from "../components/ui";
import { useNewBlueprint } from "./BlueprintPicker";
import { Editor } from "./Editor";
import { loadDraft, loadPositions, newDrafts } from "./storage";

export function DesignerPage() {
  const { blueprintId } = useParams();
  if (!blueprintId) return <Landing />;
  return <Loader key={blueprintId} id={blueprintId} />;
}

function Loader({ id }: { id: string }) {
  const draft = loadDraft(id);
  const q = useQuery({
    queryKey: ["blueprint-source", id],
    queryFn: () => api.blueprintSource(id),
    // A new blueprint exists only as a local draft until it is created.
    enabled: !draft?.isNew,
    retry: false,
    refetchOnWindowFocus: false,
    staleTime: Infinity,
    gcTime: 0,
  });
  if (draft?.isNew) {
    return <Editor blueprintId={id} source={draft.source} savedSource="" baseVersion={null} isNew positions={loadPositions(id)} draft={null} />;
  }
  if (q.isLoading) return <Spinner label="Opening the blueprint…" />;
  if (q.error) {
    return (
      <div className="flex h-full flex-col">
        <PageHeader title="Designer" />
        <ErrorState error={q.error} />
        <div className="px-4">
          <Link to="/designer" className="text-[13px] text-accent hover:underline">
            Back to all blueprints
          </Link>
        </div>
      </div>
    );
  }
  const data = q.data!;
  const offer = draft && !draft.isNew && draft.source !== data.source ? draft : null;
  return (
    <Editor
      blueprintId={id}
      source={data.source}
      savedSource={data.source}
      baseVersion={data.version}
      isNew={false}
      positions={loadPositions(id)}
      draft={offer}
    />
  );
}

function Landing() {
  const list = useQuery({ queryKey: ["blueprints"], queryFn: api.blueprints });
  const startNew = useNewBlueprint();
  const drafts = newDrafts();
  return (
    <div className="flex h-full flex-col">
      <PageHeader title="Designer">
        <Button variant="primary" data-testid="new-blueprint-button" onClick={startNew}>
          <FilePlus2 className="size-3.5" /> New blueprint
        </Button>
      </PageHeader>
      <div className="min-h-0 flex-1 overflow-y-auto p-6" data-testid="blueprint-list">
        {list.isLoading && <Spinner />}
        {list.error && <ErrorState error={list.error} />}
        {list.data && list.data.length === 0 && drafts.length === 0 && (
          <EmptyState icon={<Workflow className="size-8" />} title="No blueprints yet">
            Start one from a small template; it becomes a file under <code>blueprints/</code> when you create it.
          </EmptyState>
        )}
        <div className="mx-auto grid max-w-5xl grid-cols-[repeat(auto-fill,minmax(300px,1fr))] gap-3">
          {drafts.map(({ id, draft }) => (
            <Link key={id} to={`/designer/${id}`} className="group flex flex-col gap-2 rounded-xl border border-dashed border-warn/50 bg-panel p-4 hover:border-warn">
              <div className="flex items-center gap-2">
                <span className="font-mono text-[12px] text-muted">{id}</span>
                <Badge tone="warn">draft, not created</Badge>
              </div>
              <div className="text-[12px] text-faint">Edited {new Date(draft.savedAt).toLocaleString()}</div>
            </Link>
          ))}
          {list.data?.map((b) => (
            <Link
              key={b.id}
              to={`/designer/${b.id}`}
              data-testid={`blueprint-card-${b.id}`}
              className="group flex flex-col gap-2 rounded-xl border border-border bg-panel p-4 transition-shadow hover:border-faint/60 hover:shadow-md"
            >
              <div className="flex items-start gap-2">
                <div className="min-w-0 flex-1">
                  <div className="truncate text-[14px] font-semibold">{b.name}</div>
                  <div className="truncate font-mono text-[11.5px] text-faint">{b.id}</div>
                </div>
                <Badge tone={b.stage === "approved" ? "ok" : b.stage === "draft" ? "neutral" : "info"}>{b.stage}</Badge>
              </div>
              <p className="line-clamp-2 text-[12.5px] leading-snug text-muted">{b.description}</p>
              <div className="mt-auto flex items-center gap-3 pt-1 text-[12px] text-faint">
                {b.domain && <span>{b.domain}</span>}
                <span className="inline-flex items-center gap-1">
                  <GitBranch className="size-3" /> {b.nodes} nodes
                </span>
                <span>
                  {b.triggers.length} trigger{b.triggers.length === 1 ? "" : "s"}
                </span>
                <ArrowRight className="ml-auto size-3.5 opacity-0 transition-opacity group-hover:opacity-100" />
              </div>
            </Link>
          ))}
        </div>
      </div>
    </div>
  );
}
