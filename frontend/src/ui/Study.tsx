import { useState } from "preact/hooks";
import { api } from "../api/client";
import type { MindNode, QuizQuestion } from "../api/types";
import { ErrorText, Section, useAction } from "./common";
import { MindMap } from "./MindMap";

type Tool = "summary" | "quiz" | "flashcards" | "mindmap";

export function Study(props: { notebookId: string }) {
  const [tool, setTool] = useState<Tool>("summary");
  const tools: { id: Tool; label: string }[] = [
    { id: "summary", label: "Summary" },
    { id: "quiz", label: "Quiz" },
    { id: "flashcards", label: "Flashcards" },
    { id: "mindmap", label: "Mind map" },
  ];
  return (
    <>
      <div class="seg" role="group" aria-label="Study tool">
        {tools.map((t) => (
          <button key={t.id} type="button" aria-pressed={tool === t.id} onClick={() => setTool(t.id)}>
            {t.label}
          </button>
        ))}
      </div>
      {tool === "summary" && <Summary notebookId={props.notebookId} />}
      {tool === "quiz" && <Quiz notebookId={props.notebookId} />}
      {tool === "flashcards" && <Flashcards notebookId={props.notebookId} />}
      {tool === "mindmap" && <MindMapTool notebookId={props.notebookId} />}
    </>
  );
}

function Summary(props: { notebookId: string }) {
  const [data, setData] = useState<{ summary: string; keyPoints: string[] } | null>(null);
  const action = useAction();
  const generate = () =>
    action.run(async () => setData(await api("/api/ai/summarize", { json: { notebookId: props.notebookId } })));
  return (
    <Section
      title="Summary"
      actions={
        <button type="button" class="primary" onClick={() => void generate()} disabled={action.busy}>
          {action.busy ? "Summarising…" : data ? "Summarise again" : "Summarise"}
        </button>
      }
    >
      <ErrorText error={action.error} />
      {data ? (
        <>
          <p class="prose">{data.summary}</p>
          <h3>Key points</h3>
          <ul class="bullets">
            {data.keyPoints.map((k, i) => (
              <li key={i}>{k}</li>
            ))}
          </ul>
        </>
      ) : (
        <p class="muted">A summary of the notebook's ready sources, with its key points.</p>
      )}
    </Section>
  );
}

function Quiz(props: { notebookId: string }) {
  const [count, setCount] = useState(5);
  const [questions, setQuestions] = useState<QuizQuestion[] | null>(null);
  const [answers, setAnswers] = useState<Record<number, number>>({});
  const [submitted, setSubmitted] = useState(false);
  const action = useAction();
  const generate = (e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      const r = await api<{ questions: QuizQuestion[] }>("/api/ai/quiz", {
        json: { notebookId: props.notebookId, count },
      });
      setQuestions(r.questions);
      setAnswers({});
      setSubmitted(false);
    });
  };
  const score = questions ? questions.filter((q, i) => answers[i] === q.answerIndex).length : 0;
  const answeredAll = questions !== null && questions.every((_, i) => answers[i] !== undefined);
  return (
    <Section title="Quiz">
      <form class="inline" onSubmit={generate}>
        <label for="quiz-count">Questions</label>
        <input
          id="quiz-count"
          type="number"
          min={1}
          max={20}
          value={count}
          onInput={(e) => setCount(Number((e.currentTarget as HTMLInputElement).value) || 5)}
        />
        <button type="submit" class="primary" disabled={action.busy}>
          {action.busy ? "Writing questions…" : questions ? "New quiz" : "Start a quiz"}
        </button>
      </form>
      <ErrorText error={action.error} />
      {questions && (
        <form
          class="quiz"
          onSubmit={(e) => {
            e.preventDefault();
            setSubmitted(true);
          }}
        >
          {questions.map((q, i) => {
            const chosen = answers[i];
            return (
              <fieldset key={i} class="question" data-testid="question">
                <legend>
                  {i + 1}. {q.question}
                </legend>
                {q.options.map((opt, j) => {
                  const verdict =
                    submitted && j === q.answerIndex ? "correct" : submitted && j === chosen ? "wrong" : "";
                  return (
                    <label key={j} class={`option ${verdict}`}>
                      <input
                        type="radio"
                        name={`q${i}`}
                        value={String(j)}
                        checked={chosen === j}
                        disabled={submitted}
                        onChange={() => setAnswers({ ...answers, [i]: j })}
                      />{" "}
                      {opt}
                      {verdict === "correct" && <span class="sr-only"> (correct answer)</span>}
                      {verdict === "wrong" && <span class="sr-only"> (your answer, wrong)</span>}
                    </label>
                  );
                })}
                {submitted && (
                  <p class={chosen === q.answerIndex ? "ok small" : "error small"}>
                    {chosen === q.answerIndex ? "Correct." : `The answer is “${q.options[q.answerIndex]}”.`}{" "}
                    {q.explanation}
                  </p>
                )}
              </fieldset>
            );
          })}
          {submitted ? (
            <p class="score" role="status" data-testid="score">
              You scored {score} of {questions.length}.
            </p>
          ) : (
            <button type="submit" class="primary" disabled={!answeredAll}>
              Check answers
            </button>
          )}
        </form>
      )}
    </Section>
  );
}

function Flashcards(props: { notebookId: string }) {
  const [cards, setCards] = useState<{ front: string; back: string }[] | null>(null);
  const [index, setIndex] = useState(0);
  const [flipped, setFlipped] = useState(false);
  const action = useAction();
  const generate = () =>
    action.run(async () => {
      const r = await api<{ cards: { front: string; back: string }[] }>("/api/ai/flashcards", {
        json: { notebookId: props.notebookId, count: 10 },
      });
      setCards(r.cards);
      setIndex(0);
      setFlipped(false);
    });
  const card = cards?.[index];
  const go = (d: number) => {
    if (!cards) return;
    setIndex((index + d + cards.length) % cards.length);
    setFlipped(false);
  };
  return (
    <Section
      title="Flashcards"
      actions={
        <button type="button" class="primary" onClick={() => void generate()} disabled={action.busy}>
          {action.busy ? "Making cards…" : cards ? "New cards" : "Make flashcards"}
        </button>
      }
    >
      <ErrorText error={action.error} />
      {card ? (
        <div class="flash">
          <button
            type="button"
            class={`flashcard ${flipped ? "flipped" : ""}`}
            aria-pressed={flipped}
            aria-label={`Card ${index + 1} of ${cards!.length}, ${flipped ? "answer" : "question"}: ${flipped ? card.back : card.front}. Activate to flip.`}
            onClick={() => setFlipped(!flipped)}
            data-testid="flashcard"
          >
            <span class="face front" aria-hidden="true">
              {card.front}
            </span>
            <span class="face back" aria-hidden="true">
              {card.back}
            </span>
          </button>
          <div class="inline">
            <button type="button" onClick={() => go(-1)}>
              Previous
            </button>
            <span>
              {index + 1} / {cards!.length}
            </span>
            <button type="button" onClick={() => go(1)}>
              Next
            </button>
          </div>
        </div>
      ) : (
        <p class="muted">Cards with a question on the front and the answer on the back.</p>
      )}
    </Section>
  );
}

function MindMapTool(props: { notebookId: string }) {
  const [root, setRoot] = useState<MindNode | null>(null);
  const action = useAction();
  const generate = () =>
    action.run(async () => {
      const r = await api<{ root: MindNode }>("/api/ai/mindmap", { json: { notebookId: props.notebookId } });
      setRoot(r.root);
    });
  return (
    <Section
      title="Mind map"
      actions={
        <button type="button" class="primary" onClick={() => void generate()} disabled={action.busy}>
          {action.busy ? "Drawing…" : root ? "Draw again" : "Draw a mind map"}
        </button>
      }
    >
      <ErrorText error={action.error} />
      {root ? <MindMap root={root} /> : <p class="muted">The notebook's topics as a tree.</p>}
    </Section>
  );
}
