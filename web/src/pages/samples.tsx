import { useCan } from "../session";
import { Empty, ErrorBox, FilterInput, Pager, Table, Time, usePagedList } from "../ui";

export function Samples() {
  const list = usePagedList<any>("/api/v1/samples", ["q", "agent", "sha256"], 50);
  const canDl = useCan("analyst");
  return (
    <section>
      <h1>Samples</h1>
      <p class="muted">Files agents uploaded (collect tasks). Downloads are AES-256 encrypted ZIP archives; the password is the sample_archive_password setting (“infected” unless changed).</p>
      <div class="filters">
        <FilterInput name="q" label="Search" placeholder="path" />
        <FilterInput name="sha256" label="SHA-256" />
      </div>
      <ErrorBox error={list.error} what="Samples" />
      {list.data && !list.data.items.length ? <Empty>No samples. Run a collect task to fetch a file from an agent.</Empty> : null}
      {list.data && list.data.items.length ? (
        <Table
          caption="samples"
          rows={list.data.items}
          rowKey={(s) => s.sha256 + s.agent_id + s.received_at}
          columns={[
            { key: "path", title: "Path", render: (s) => <code>{s.path}</code> },
            { key: "size", title: "Size", render: (s) => s.size + " B" },
            { key: "sha", title: "SHA-256", render: (s) => <code title={s.sha256}>{s.sha256.slice(0, 16)}…</code> },
            { key: "agent", title: "Agent", render: (s) => <a href={"/agents/" + s.agent_id}>{s.agent_id.slice(0, 8)}</a> },
            { key: "at", title: "Received", render: (s) => <Time t={s.received_at} /> },
            { key: "dl", title: "", render: (s) => (canDl ? <a href={`/api/v1/samples/${s.sha256}/download`} download>Download ZIP</a> : null) },
          ]}
        />
      ) : null}
      <Pager id="samples" next={list.data?.next_cursor} cursor={list.params.cursor} count={list.data?.items.length || 0} />
    </section>
  );
}
