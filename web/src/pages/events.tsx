import { setQuery } from "../router";
import { Badge, Empty, ErrorBox, FilterInput, FilterSelect, Json, Pager, Table, Time, usePagedList } from "../ui";

export function Events() {
  const list = usePagedList<any>("/api/v1/events", ["q", "type", "level", "agent", "task", "rule"], 50);
  return (
    <section>
      <h1>Events</h1>
      <div class="filters">
        <FilterInput name="q" label="Search" placeholder="text in the event" />
        <FilterInput name="type" label="Type" placeholder="finding, inventory, …" />
        <FilterSelect name="level" label="Level" options={["alert", "warning", "notice", "info"]} />
        <FilterInput name="agent" label="Agent ID" />
        <FilterInput name="task" label="Task ID" />
      </div>
      <ErrorBox error={list.error} what="Events" />
      {list.data && !list.data.items.length ? <Empty>No events match.</Empty> : null}
      {list.data && list.data.items.length ? (
        <Table
          caption="events"
          rows={list.data.items}
          rowKey={(e) => e.agent_id + "/" + e.seq}
          sort={list.params.sort || "-received_at"}
          onSort={(s) => setQuery({ sort: s, cursor: undefined })}
          columns={[
            { key: "type", title: "Type", sort: "type", render: (e) => e.type },
            { key: "level", title: "Level", sort: "level", render: (e) => <Badge v={e.level} /> },
            { key: "agent", title: "Agent", render: (e) => <a href={"/agents/" + e.agent_id}>{e.agent_id.slice(0, 8)}</a> },
            { key: "data", title: "Data", render: (e) => <details><summary>{JSON.stringify(e.data).slice(0, 80)}</summary><Json v={e.data} /></details> },
            { key: "at", title: "Received", sort: "received_at", render: (e) => <Time t={e.received_at} /> },
          ]}
        />
      ) : null}
      <Pager id="events" next={list.data?.next_cursor} cursor={list.params.cursor} count={list.data?.items.length || 0} />
    </section>
  );
}
