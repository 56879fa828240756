/** Shapes of the API's answers (see /api/openapi.json). */

export interface User {
  id: string;
  email: string;
  name: string;
  plan: string;
  /** false while the email waits for its confirmation (where the server requires one) */
  emailVerified?: boolean;
}

export interface Notebook {
  id: string;
  title: string;
  createdAt: string;
  updatedAt?: string;
  deletedAt?: string;
  purgeAt?: string;
}

export interface Source {
  id: string;
  title: string;
  kind?: string;
  status: "processing" | "ready" | "failed";
  chunks: number;
  size?: number;
  error?: string;
  createdAt?: string;
}

export interface ChatSession {
  id: string;
  title: string;
  notebookId: string | null;
  updatedAt: string;
}

export interface ChatMessage {
  id: string;
  role: "user" | "assistant";
  content: string;
  sources?: { sourceId: string; title: string; chunkId?: string; score?: number; text?: string }[];
  createdAt: string;
}

export interface Board {
  id: string;
  title: string;
  ownerId: string;
  role: "owner" | "editor" | "viewer";
  createdAt: string;
  archived?: boolean;
  members?: { userId: string; name: string; role: string }[];
  deletedAt?: string;
}

export interface Task {
  id: string;
  title: string;
  dueAt: string;
  done: boolean;
}

export interface Notification {
  id: string;
  type: string;
  title: string;
  body: string;
  read?: boolean;
  createdAt?: string;
}

export interface Plan {
  id: string;
  name: string;
  price: number;
  currency?: string;
  limits: { aiPerDay: number; uploadsPerDay: number; storageBytes: number; boards: number; notebooks: number };
}

export interface Usage {
  date: string;
  plan: string;
  used: { ai: number; uploads: number; storageBytes: number; boards?: number; notebooks?: number };
  limits: Plan["limits"];
}

export interface Subscription {
  plan: string;
  status: string;
  currentPeriodEnd: string | null;
  cancelAtPeriodEnd: boolean;
}

export interface MindNode {
  title: string;
  children: MindNode[];
}

export interface QuizQuestion {
  question: string;
  options: string[];
  answerIndex: number;
  explanation: string;
}
