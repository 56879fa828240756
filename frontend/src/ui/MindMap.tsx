import type { MindNode } from "../api/types";

interface Placed {
  node: MindNode;
  depth: number;
  y: number;
  parent: Placed | null;
}

const COL = 200;
const ROW = 36;
const BOX_W = 170;
const BOX_H = 26;

/** A left-to-right tree: leaves on successive rows, each parent centred on its children. */
export function layout(root: MindNode): { nodes: Placed[]; rows: number; depth: number } {
  const nodes: Placed[] = [];
  let row = 0;
  let maxDepth = 0;
  const walk = (node: MindNode, depth: number, parent: Placed | null): Placed => {
    const placed: Placed = { node, depth, y: 0, parent };
    nodes.push(placed);
    maxDepth = Math.max(maxDepth, depth);
    const kids = (node.children ?? []).map((c) => walk(c, depth + 1, placed));
    placed.y = kids.length ? (kids[0].y + kids[kids.length - 1].y) / 2 : row++;
    return placed;
  };
  walk(root, 0, null);
  return { nodes, rows: Math.max(row, 1), depth: maxDepth };
}

function clip(text: string, max = 24): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function Outline(props: { node: MindNode }) {
  return (
    <li>
      {props.node.title}
      {props.node.children?.length > 0 && (
        <ul>
          {props.node.children.map((c, i) => (
            <Outline key={i} node={c} />
          ))}
        </ul>
      )}
    </li>
  );
}

export function MindMap(props: { root: MindNode }) {
  const { nodes, rows, depth } = layout(props.root);
  const width = (depth + 1) * COL;
  const height = rows * ROW + 10;
  const cy = (p: Placed) => 5 + p.y * ROW + BOX_H / 2;
  return (
    <figure class="mindmap">
      <div class="mindmap-scroll">
        <svg
          viewBox={`0 0 ${width} ${height}`}
          width={width}
          height={height}
          role="img"
          aria-labelledby="mindmap-title"
          data-testid="mindmap"
        >
          <title id="mindmap-title">Mind map of {props.root.title}</title>
          {nodes
            .filter((p) => p.parent)
            .map((p, i) => {
              const x1 = p.parent!.depth * COL + BOX_W;
              const x2 = p.depth * COL;
              const y1 = cy(p.parent!);
              const y2 = cy(p);
              const mx = (x1 + x2) / 2;
              return <path key={`e${i}`} class="edge" d={`M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`} />;
            })}
          {nodes.map((p, i) => (
            <g key={`n${i}`} class={`node depth-${Math.min(p.depth, 3)}`} transform={`translate(${p.depth * COL},${5 + p.y * ROW})`}>
              <rect width={BOX_W} height={BOX_H} rx={6} />
              <text x={10} y={17}>
                {clip(p.node.title)}
              </text>
              {p.node.title.length > 24 && <title>{p.node.title}</title>}
            </g>
          ))}
        </svg>
      </div>
      <details>
        <summary>Outline</summary>
        <ul class="outline">
          <Outline node={props.root} />
        </ul>
      </details>
    </figure>
  );
}
